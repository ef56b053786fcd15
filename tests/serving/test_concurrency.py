"""A running server under faults: a rebuild swapped in while questions are asked, and overload.

These start a real uvicorn server on 127.0.0.1 (a free port) in a thread and send
bounded numbers of requests to it; nothing else is contacted.
"""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import uvicorn

from qa.serving.app import create_app
from qa.ingest.indexer import index_paths
from qa.answering.pipeline import Pipeline
from qa.schema import Answer
from qa.settings import Settings


class Server:
    """uvicorn serving ``app`` on a free loopback port, in a background thread."""

    def __init__(self, app):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class SlowReader:
    """Answers after a pause, so that requests overlap."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def read(self, question, passages):
        time.sleep(self.seconds)
        return [Answer.in_passage(p, 0, min(5, len(p.text)), 0.9) for p in passages[:1]]


def write_reviews(folder, count: int) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"film-{i}.md").write_text(f"---\ntitle: Film {i}\n---\nActor {i} plays Hero {i} in Film {i}.")


def test_a_rebuild_is_swapped_in_without_a_restart_or_a_failed_request(tmp_path):
    folder = tmp_path / "reviews"
    write_reviews(folder, 3)
    settings = Settings(index_dir=tmp_path / "index")
    index_paths([folder], settings)
    app = create_app(settings, Pipeline(settings, reader=SlowReader(0.005)))
    statuses: list[int] = []
    stop = threading.Event()

    def ask_until_stopped(client: httpx.Client) -> None:
        for _ in range(2000):  # bounded, and stops as soon as the swap is seen
            if stop.is_set():
                return
            statuses.append(client.post("/ask", json={"question": "who plays Hero 1?"}).status_code)

    with Server(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert len(client.get("/films").json()) == 3
        workers = [threading.Thread(target=ask_until_stopped, args=(client,)) for _ in range(2)]
        for worker in workers:
            worker.start()
        write_reviews(folder, 6)
        index_paths([folder], settings)  # publishes a new generation while questions run
        deadline = time.monotonic() + 30
        while len(client.get("/films").json()) != 6:
            assert time.monotonic() < deadline, "the server never picked up the new index"
            time.sleep(0.05)
        time.sleep(0.2)
        stop.set()
        for worker in workers:
            worker.join()
    assert statuses and set(statuses) == {200}, statuses


def test_overload_gets_quick_503s_with_retry_after(shipped_settings, monkeypatch):
    import qa.serving.deps

    monkeypatch.setattr(qa.serving.deps, "BUSY_WAIT_SECONDS", 0.1)
    settings = Settings(index_dir=shipped_settings.index_dir, max_concurrent_requests=1)
    app = create_app(settings, Pipeline(settings, reader=SlowReader(1.0)))
    with Server(app) as server:
        def ask(_):
            response = httpx.post(f"{server.url}/ask", json={"question": "who plays Sera?"}, timeout=30)
            return response, time.monotonic()

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(ask, range(4)))
    codes = sorted(r.status_code for r, _ in results)
    assert codes[0] == 200 and 503 in codes
    answered = max(done for r, done in results if r.status_code == 200)
    for response, done in results:
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "1" and "busy" in response.json()["detail"]
            assert done < answered  # refused at once, not queued behind the slow question


def test_a_short_bounded_load_gives_no_errors_and_no_memory_growth(shipped_settings):
    """The CI form of benchmarks/latency_bench.py --clients 8 --seconds 60 (the full load test)."""
    from benchmarks.latency_bench import run_clients

    def rss_mb() -> float:
        status = open("/proc/self/status").read()
        return int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024

    questions = ["who plays Sera?", "who directed Fargo?", "where is Jaws set?", "when was Casablanca released?"]
    with Server(create_app(shipped_settings)) as server:
        run_clients(server.url, questions, 2, 4)  # warm-up: models and index loaded
        before = rss_mb()
        result = run_clients(server.url, questions, clients=8, per_client=6, seconds=60)
        growth = rss_mb() - before
    assert result["errors"] == 0, result["error_kinds"]
    assert result["ok"] > 0
    assert growth < 150, f"memory grew by {growth:.0f} MB over {result['ok']} questions"
