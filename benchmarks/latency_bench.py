"""`/ask` latency and throughput against a running server, with 1 and 4 concurrent clients.

Run from the repository root, after the index exists (``index_bench.py --full``)::

    nice -n 10 .venv/bin/python benchmarks/latency_bench.py                       # 50,000 reviews
    nice -n 10 .venv/bin/python benchmarks/latency_bench.py --index-dir /work/bench-index/shipped-onnx-int8 --label shipped
    nice -n 10 .venv/bin/python benchmarks/latency_bench.py --clients 8 --seconds 60 --requests 100000 --label load

The last is the load test: 8 clients for 60 s (bounded, it stops by itself), reporting
errors (any status but 200, a 503 included), latency and how much the server's memory grew.

Starts ``qa serve`` on 127.0.0.1 (a free port) over the index, waits until ``/healthz``
answers, sends 10 warm-up questions, then for each client count (1 and 4) a bounded
number of ``POST /ask`` requests (``--requests`` per client; the questions of the
factual and SubjQA dev files in turn, the same order for every run), and stops the
server. Records p50/p95/p99 latency as the client sees it, throughput, errors (any status
other than 200), and the server's resident memory (VmRSS, and its peak VmHWM) with the
index loaded. Results go into ``BENCHMARKS.md`` (section ``latency-<label>``).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BENCH_INDEX, IMDB_QUESTIONS, ROOT, SUBJQA_QUESTIONS, machine, table, write_section  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    values = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
              if line.startswith(("VmRSS", "VmHWM"))}
    return values.get("VmRSS", 0) / 1024, values.get("VmHWM", 0) / 1024


def questions() -> list[str]:
    out = []
    for path in (IMDB_QUESTIONS, SUBJQA_QUESTIONS):
        if path.exists():
            out += [json.loads(line)["question"] for line in open(path, encoding="utf-8") if line.strip()]
    return out


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    i = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[i]


def run_clients(url: str, qs: list[str], clients: int, per_client: int, seconds: float | None = None) -> dict:
    """``clients`` threads each send up to ``per_client`` questions, stopping early after ``seconds``."""
    import httpx

    deadline = time.perf_counter() + seconds if seconds else None
    latencies: list[float] = []
    server_ms: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        with httpx.Client(timeout=60) as http:
            for i in range(per_client):
                if deadline is not None and time.perf_counter() > deadline:
                    return
                q = qs[(c * per_client + i) % len(qs)]
                started = time.perf_counter()
                try:
                    r = http.post(f"{url}/ask", json={"question": q})
                    took = (time.perf_counter() - started) * 1000
                    with lock:
                        if r.status_code == 200:
                            latencies.append(took)
                            server_ms.append(r.json().get("took_ms", 0))
                        else:
                            errors.append(f"{r.status_code}")
                except httpx.HTTPError as err:
                    with lock:
                        errors.append(type(err).__name__)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies) + len(errors), "ok": len(latencies), "errors": len(errors),
            "error_kinds": sorted(set(errors)), "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99), "server_p50": percentile(server_ms, 50),
            "throughput": len(latencies) / wall, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, default=BENCH_INDEX / "imdb-onnx-int8")
    parser.add_argument("--label", default="imdb")
    parser.add_argument("--requests", type=int, default=100, help="requests per client")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop each client run after this long (the load test: --clients 8 --seconds 60)")
    args = parser.parse_args()
    started_machine = machine()
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_INDEX_DIR": str(args.index_dir)}
    # The server's log goes to a file: a pipe nobody reads would fill up and stall the server.
    log_path = BENCH_INDEX / "results" / f"latency-{args.label}-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w")
    server = subprocess.Popen([sys.executable, "-c", "from qa.cli import run; run()", "serve", "--port", str(port)],
                              cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    import httpx

    try:
        deadline = time.time() + 300
        health = None
        while time.time() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"server exited; its log: {log_path}")
            try:
                r = httpx.get(f"{url}/healthz", timeout=2)
                if r.status_code == 200:
                    health = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        if health is None:
            raise SystemExit("server did not come up within 300 s")
        qs = questions()
        run_clients(url, qs[-10:], 1, 10)  # warm-up
        rss_idle, _ = memory_mb(server.pid)
        results = []
        for c in args.clients:
            before, _ = memory_mb(server.pid)
            results.append(run_clients(url, qs, c, args.requests, args.seconds))
            results[-1]["rss_growth"] = memory_mb(server.pid)[0] - before
        rss, hwm = memory_mb(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    print(f"server log: {log_path}")
    for r in results:
        print(json.dumps(r), flush=True)
    rows = [[r["clients"], r["requests"], f"{r['wall']:.0f}", r["errors"], f"{r['p50']:.0f}", f"{r['p95']:.0f}",
             f"{r['p99']:.0f}", f"{r['server_p50']:.0f}", f"{r['throughput']:.1f}", f"{r['rss_growth']:+.0f}"]
            for r in results]
    body = (f"Server: `qa serve` on 127.0.0.1 over `{args.index_dir}` ({health.get('documents')} reviews, "
            f"{health.get('passages')} passages), default settings. Questions: the factual and SubjQA dev "
            "questions in turn, no filters, no history.\n\n")
    body += table(["clients", "requests", "seconds", "errors", "p50 ms", "p95 ms", "p99 ms", "server took_ms p50",
                   "throughput req/s", "RSS growth MB"], rows)
    body += (f"\n\nServer memory with the index loaded: {rss_idle:.0f} MB after warm-up, {rss:.0f} MB after the "
             f"runs (peak {hwm:.0f} MB).")
    if any(r["errors"] for r in results):
        body += " Errors: " + ", ".join(f"{r['clients']} clients: {r['error_kinds']}" for r in results if r["errors"])
        body += f" (server log: `{log_path}`)"
    write_section(f"latency-{args.label}", f"/ask latency ({args.label})", body, started_machine)


if __name__ == "__main__":
    main()
