"""The local store against Milvus (a `milvus-lite server`), side by side on the same 5,000 IMDB reviews.

Run from the repository root (needs ../shared/data)::

    nice -n 10 .venv/bin/python benchmarks/backends_bench.py

For each backend: index the reviews with `qa index` (wall time, passages per second);
hybrid recall@1/5 and MRR of the factual dev questions (each question's gold review is in
the corpus); `/ask` p50/p95 with 1 and 4 clients against `qa serve`; and, for Milvus,
`qa serve --workers 2` against one worker (requests per second with 4 clients). The corpus
is the gold reviews of `factual-qa-dev.jsonl` plus the first other reviews of the file, up
to 5,000. Results go into ``BENCHMARKS.md`` (section ``backends``).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BENCH_INDEX, IMDB_QUESTIONS, IMDB_REVIEWS, ROOT, machine, table, write_section  # noqa: E402
from benchmarks.latency_bench import free_port, questions, run_clients  # noqa: E402
from benchmarks.retrieval_bench import load, measure  # noqa: E402

WORK = BENCH_INDEX / "backends"


def corpus(size: int) -> Path:
    path = WORK / f"corpus-{size}.jsonl"
    if path.exists():
        return path
    gold = {q["review_id"] for q in load(IMDB_QUESTIONS)}
    chosen: list[dict] = []
    others: list[dict] = []
    with gzip.open(IMDB_REVIEWS, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if row["id"] in gold:
                chosen.append(row)
            elif len(others) < size:
                others.append(row)
    chosen += others[: size - len(chosen)]
    WORK.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for row in chosen:
            out.write(json.dumps({"id": row["id"], "text": row["text"], "film": row["imdb_title"]}) + "\n")
    return path


def env_for(store: str) -> dict[str, str]:
    return {**os.environ, "QA_STORE": store, "QA_MILVUS_COLLECTION": "bench"}


def index(store: str, source: Path) -> dict:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "qa", "index", str(source), "--rebuild", "--quiet"], cwd=ROOT,
                            env=env_for(store), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(result.stderr)
    passages = int(re.search(r"(\d+) passages embedded", result.stderr).group(1))
    return {"wall": wall, "passages": passages, "rate": passages / wall, "summary": result.stderr.strip()}


def recall(store: str) -> dict:
    from qa.embedding.loading import embedder_for
    from qa.settings import Settings
    from qa.stores.factory import open_store

    settings = Settings(store=store, milvus_collection="bench")
    opened = open_store(settings)
    embedder = embedder_for(settings)
    result = measure(opened, embedder.encode, load(IMDB_QUESTIONS))
    if hasattr(opened, "location"):
        from qa.stores.milvus.client import forget

        forget(opened.location)
    return result


def serve(store: str, workers: int, client_counts: list[int], requests: int) -> list[dict]:
    import httpx

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--port", str(port), "--workers", str(workers)],
                               cwd=ROOT, env=env_for(store), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"qa serve did not start: {process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        qs = questions()
        run_clients(url, qs, max(workers, 2), 10)  # warm up every worker
        return [run_clients(url, qs, clients, requests) for clients in client_counts]
    finally:
        process.terminate()
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=60, help="requests per client")
    args = parser.parse_args()
    from tests.milvus_server import LiteServer

    started_machine = machine()
    source = corpus(args.size)
    milvus_data = WORK / "milvus-data"
    shutil.rmtree(milvus_data, ignore_errors=True)
    server = LiteServer(milvus_data)
    server.start()
    backends = [("local (SQLite + FAISS)", str(WORK / "local-index")), ("Milvus Lite server", server.uri)]
    rows, speed, notes = [], [], []
    try:
        for name, store in backends:
            built = index(store, source)
            print(name, built["summary"], flush=True)
            quality = recall(store)
            print(name, quality, flush=True)
            latency = serve(store, 1, [1, 4], args.requests)
            print(name, latency, flush=True)
            rows.append([name, f"{built['wall']:.0f}", built["passages"], f"{built['rate']:.0f}",
                         f"{quality['R@1']:.3f}", f"{quality['R@5']:.3f}", f"{quality['MRR']:.3f}",
                         f"{latency[0]['p50']:.0f}", f"{latency[0]['p95']:.0f}", f"{latency[1]['p50']:.0f}",
                         f"{latency[1]['p95']:.0f}", f"{latency[1]['throughput']:.1f}"])
            notes += [f"{name}: {sum(r['errors'] for r in latency)} errors"]
        one, two = serve(server.uri, 1, [4], args.requests)[0], serve(server.uri, 2, [4], args.requests)[0]
        speed = [["1", f"{one['throughput']:.1f}", f"{one['p50']:.0f}", f"{one['p95']:.0f}", one["errors"]],
                 ["2", f"{two['throughput']:.1f}", f"{two['p50']:.0f}", f"{two['p95']:.0f}", two["errors"]]]
    finally:
        server.stop()
    body = (f"Corpus: {args.size} IMDB reviews (`{source.name}`: the {len(load(IMDB_QUESTIONS))} factual dev "
            "questions' gold reviews and the first others of the file), films by `imdb_title`. Index: `qa index "
            "--rebuild` as a subprocess (embedding included, onnx-int8). Recall: hybrid retrieval with the default "
            "settings, the gold review among the first k reviews. Latency: `qa serve` on 127.0.0.1, "
            f"{args.requests} `POST /ask` per client after a warm-up; Milvus Lite server on the same machine, "
            "so both share its 2 cores.\n\n"
            + table(["backend", "index s", "passages", "passages/s", "R@1", "R@5", "MRR", "p50 ms (1)",
                     "p95 ms (1)", "p50 ms (4)", "p95 ms (4)", "req/s (4)"], rows)
            + "\n\n`qa serve --workers N` against the Milvus Lite server, 4 clients:\n\n"
            + table(["workers", "req/s", "p50 ms", "p95 ms", "errors"], speed)
            + "\n\n" + "; ".join(notes) + ".")
    write_section("backends", "Store backends side by side: local and Milvus", body, started_machine)
    print(body)


if __name__ == "__main__":
    main()
