"""Indexing speed: the 50,000 IMDB reviews end to end, and embedding backends side by side.

Run from the repository root (one heavy job at a time on a shared machine)::

    nice -n 10 .venv/bin/python benchmarks/index_bench.py --full onnx-int8
    nice -n 10 .venv/bin/python benchmarks/index_bench.py --compare 600
    nice -n 10 .venv/bin/python benchmarks/index_bench.py --shipped
    nice -n 10 .venv/bin/python benchmarks/index_bench.py --republish onnx-int8

``--full BACKEND ...`` runs ``qa index reviews.jsonl.gz --rebuild`` in a child process per
backend, into ``$QA_BENCH_INDEX/imdb-<backend>`` (default ``/work/bench-index``), and
records wall time, passages per second (embedding only, as ``qa index`` reports it), the
child's peak resident memory, the vector index build time and the index size on disk.
``--compare N`` embeds the passages of N reviews (the 32 gold reviews of the factual dev
questions and evenly spaced others) with each backend (``torch`` fp32, ``onnx`` fp32,
``onnx-int8``) in one process, interleaved chunk by chunk, and reports passages per second,
the int8/fp32 ratio, how close the vectors are, and recall of the dev questions' gold
reviews within that subset with each backend's vectors.
``--shipped`` indexes ``documents/`` (the small case). ``--republish BACKEND`` publishes
the 50,000-review index again without re-embedding, so the vector index is rebuilt with
the current ``QA_INDEX_TYPE``/``QA_HNSW_*`` settings. Results go into ``BENCHMARKS.md``
(sections ``indexing-full``, ``indexing-compare``, ``indexing-shipped``); figures of earlier
``--full`` runs of other backends are kept in ``$QA_BENCH_INDEX/results/indexing-full.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (BENCH_INDEX, IMDB_REVIEWS, ROOT, dir_size, machine, table,  # noqa: E402
                                write_section)

INTERLEAVE_CHUNK = 256  # passages per backend turn in --compare
SUMMARY = re.compile(r"(\d+) passages embedded \((\d+) passages/s\) in ([\d.]+)s")


def run_index(paths: list[Path], index_dir: Path, backend: str, extra_env: dict[str, str] | None = None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QA_EMBEDDING_BACKEND": backend, **(extra_env or {})}
    cmd = [sys.executable, "-c", "from qa.cli import run; run()", "index", *map(str, paths),
           "--index-dir", str(index_dir), "--rebuild", "--quiet"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"indexing failed ({proc.returncode}):\n{stderr}")
    match = SUMMARY.search(stderr)
    manifest = json.loads((index_dir / (index_dir / "CURRENT").read_text().strip() / "manifest.json").read_text())
    generation = index_dir / (index_dir / "CURRENT").read_text().strip()
    return {
        "backend": backend, "documents": manifest["documents"], "passages": manifest["passages"],
        "wall_s": round(wall, 1), "embed_passages_per_s": int(match.group(2)) if match else None,
        "passages_per_s_wall": round(manifest["passages"] / wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024), "index_type": manifest.get("index_type", "flat"),
        "index_mb": round(dir_size(generation) / 1e6, 1),
        "vectors_mb": round((generation / "vectors.faiss").stat().st_size / 1e6, 1),
        "sqlite_mb": round((generation / "store.sqlite").stat().st_size / 1e6, 1),
        "summary": stderr.strip().splitlines()[-1] if stderr.strip() else "",
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def full(backends: list[str]) -> None:
    started_machine = machine()
    results_file = BENCH_INDEX / "results" / "indexing-full.json"
    results_file.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    for backend in backends:
        print(f"indexing {IMDB_REVIEWS} with {backend} ...", flush=True)
        r = run_index([IMDB_REVIEWS], BENCH_INDEX / f"imdb-{backend}", backend)
        r["date"] = time.strftime("%Y-%m-%d %H:%M")
        results[backend] = r
        print(json.dumps(r, indent=2), flush=True)
        results_file.write_text(json.dumps(results, indent=2))
    rows = [[r["backend"], r["date"], r["documents"], r["passages"], f"{r['wall_s'] / 60:.1f} min",
             r["embed_passages_per_s"], r["passages_per_s_wall"], r["peak_rss_mb"], r["index_type"],
             r["index_mb"], r["vectors_mb"], r["sqlite_mb"], r["load_after"]]
            for r in results.values()]
    body = table(["backend", "run", "reviews", "passages", "wall time", "passages/s (embedding)",
                  "passages/s (wall)", "peak RSS MB", "vector index", "index on disk MB", "vectors MB",
                  "SQLite MB", "load avg after"], rows)
    body += ("\n\nWall time covers everything `qa index` does: reading the gzip file, cutting passages "
             "(spaCy sentence splitting of long paragraphs), embedding, SQLite + FTS5 inserts, building "
             "the vector index chosen for the size and writing the generation. Indexes are in "
             f"`{BENCH_INDEX}/imdb-<backend>`.")
    write_section("indexing-full", "Indexing the 50,000 IMDB reviews", body, started_machine)


def sample_documents(reviews: int) -> list:
    """The gold reviews of the factual dev questions, then every k-th review, ``reviews`` in all."""
    from benchmarks._common import IMDB_QUESTIONS
    from qa.ingest.loaders import load_path

    gold = {json.loads(line)["review_id"] for line in open(IMDB_QUESTIONS, encoding="utf-8") if line.strip()}
    step = max(1, 50_000 // max(1, reviews - len(gold)))
    docs = [doc for i, doc in enumerate(load_path(IMDB_REVIEWS)) if doc.id in gold or i % step == 0]
    extra = [d for d in docs if d.id not in gold][: max(0, reviews - len(gold))]
    return [d for d in docs if d.id in gold] + extra


def compare(reviews: int, backends: list[str]) -> None:
    """Embedding speed side by side, and retrieval quality of each backend's vectors on the same subset."""
    import numpy as np

    from benchmarks._common import IMDB_QUESTIONS
    from benchmarks.retrieval_bench import load, measure
    from qa.embedding.base import passage_text_for_embedding
    from qa.embedding.loading import load_embedder
    from qa.ingest.passages import split_document
    from qa.settings import DEFAULT_EMBEDDING_MODEL
    from qa.stores.local import LocalStore, Update

    started_machine = machine()
    docs = sample_documents(reviews)
    passages = [split_document(d, 200, 1) for d in docs]
    texts = [passage_text_for_embedding(p.text, p.title) for ps in passages for p in ps]
    questions = load(IMDB_QUESTIONS)
    print(f"{len(texts)} passages from {len(docs)} reviews", flush=True)
    embedders = {b: load_embedder(DEFAULT_EMBEDDING_MODEL, 64, b, 2) for b in backends}
    for embedder in embedders.values():
        embedder.encode(texts[:64])  # warm-up
    # Interleaved: each chunk of passages is embedded by every backend in turn, so a change in the
    # load of the shared machine during the run affects all backends alike.
    parts: dict[str, list] = {b: [] for b in backends}
    seconds = {b: 0.0 for b in backends}
    for start in range(0, len(texts), INTERLEAVE_CHUNK):
        chunk = texts[start:start + INTERLEAVE_CHUNK]
        for backend, embedder in embedders.items():
            started = time.perf_counter()
            parts[backend].append(embedder.encode(chunk))
            seconds[backend] += time.perf_counter() - started
    vectors = {b: np.vstack(parts[b]) for b in backends}
    rates = {b: len(texts) / seconds[b] for b in backends}
    quality = {}
    print({b: round(r, 1) for b, r in rates.items()}, flush=True)
    for backend in backends:
        embedder = embedders[backend]
        index_dir = BENCH_INDEX / f"compare-{backend}"
        update = Update(index_dir, DEFAULT_EMBEDDING_MODEL, embedder.dimension, rebuild=True,
                        embedding_backend=backend)
        with update as store:
            offset = 0
            for doc, ps in zip(docs, passages):
                store.add_document(doc, "compare", doc.id, ps, vectors[backend][offset:offset + len(ps)])
                offset += len(ps)
            update.publish()
        store = LocalStore.open(index_dir)
        quality[backend] = {mode: measure(store, embedder.encode, questions, mode=mode)
                            for mode in ("dense", "hybrid")}
        store.close()
        print(backend, quality[backend], flush=True)
    reference = vectors.get("torch")
    rows = []
    for backend in backends:
        cos = None if reference is None else (reference * vectors[backend]).sum(1)
        q = quality[backend]
        rows.append([backend, f"{rates[backend]:.1f}",
                     f"{rates[backend] / rates['torch']:.2f}" if "torch" in rates else "",
                     "" if cos is None else f"{cos.mean():.4f} / {cos.min():.4f}",
                     f"{q['dense']['R@5']:.3f}", f"{q['dense']['MRR']:.3f}",
                     f"{q['hybrid']['R@5']:.3f}", f"{q['hybrid']['MRR']:.3f}"])
    body = (f"{len(texts)} passages of {len(docs)} reviews (the 32 gold reviews of the factual dev questions and "
            "evenly spaced others), embedded by each backend in one process, interleaved in chunks of "
            f"{INTERLEAVE_CHUNK} passages so that load changes on the shared machine hit every backend alike (2 threads, "
            "batches of 64 sorted by length), then indexed and searched with the 50 factual dev questions.\n\n")
    body += table(["backend", "passages/s", "ratio to torch fp32", "cosine to torch fp32 (mean / min)",
                   "dense recall@5", "dense MRR", "hybrid recall@5", "hybrid MRR"], rows)
    if "torch" in rates and "onnx-int8" in rates:
        body += (f"\n\n**int8 / fp32 passages per second: {rates['onnx-int8'] / rates['torch']:.2f}** (ONNX Runtime "
                 "int8 against sentence-transformers on PyTorch fp32, same passages, same run, interleaved). Recall@5 change "
                 f"int8 - fp32: dense {quality['onnx-int8']['dense']['R@5'] - quality['torch']['dense']['R@5']:+.3f}, "
                 f"hybrid {quality['onnx-int8']['hybrid']['R@5'] - quality['torch']['hybrid']['R@5']:+.3f}.")
    write_section("indexing-compare", "Embedding backends side by side", body, started_machine)


def shipped() -> None:
    started_machine = machine()
    rows = []
    for backend in ("onnx-int8", "torch"):
        r = run_index([ROOT / "documents"], BENCH_INDEX / f"shipped-{backend}", backend)
        rows.append([backend, r["documents"], r["passages"], f"{r['wall_s']:.1f} s", r["embed_passages_per_s"],
                     r["peak_rss_mb"], r["index_type"], r["index_mb"]])
    body = table(["backend", "reviews", "passages", "wall time (incl. model load)", "passages/s (embedding)",
                  "peak RSS MB", "vector index", "index on disk MB"], rows)
    write_section("indexing-shipped", "Indexing the shipped documents/", body, started_machine)


def republish(backend: str) -> None:
    """Publish the 50,000-review index again with the current vector index settings (no re-embedding)."""
    from qa.settings import Settings
    from qa.stores.local import LocalStore, Update, VectorIndexConfig

    started_machine = machine()
    index_dir = BENCH_INDEX / f"imdb-{backend}"
    settings = Settings(index_dir=index_dir)
    old = LocalStore.open(index_dir)
    manifest = old.manifest
    old.close()
    config = VectorIndexConfig.from_settings(settings)
    update = Update(index_dir, manifest.embedding_model, manifest.dimension, vector_index=config,
                    embedding_backend=manifest.embedding_backend)
    started = time.perf_counter()
    with update:
        generation = update.publish()
    wall = time.perf_counter() - started
    store = LocalStore.open(index_dir)
    body = (f"`{index_dir}` republished as {generation} without re-embedding: {store.manifest.passages} passages, "
            f"{store.index_type} (M={config.hnsw_m}, efConstruction={config.hnsw_ef_construction}, efSearch="
            f"{store.manifest.hnsw_ef_search}); vector index built in "
            f"{update.publish_seconds.get('build_vector_index', 0):.1f} s, whole publish (copying SQLite, "
            f"writing) {wall:.1f} s; vectors file {(store.path / 'vectors.faiss').stat().st_size / 1e6:.0f} MB.")
    print(body)
    write_section("indexing-republish", "Rebuilding the vector index of the 50,000 reviews", body, started_machine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", nargs="*", metavar="BACKEND", help="index all 50,000 reviews with each backend")
    parser.add_argument("--compare", type=int, metavar="N", help="embed the passages of N reviews with each backend")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--shipped", action="store_true", help="index documents/")
    parser.add_argument("--republish", metavar="BACKEND", help="rebuild the vector index of imdb-BACKEND")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.full is not None:
        full(args.full or ["onnx-int8"])
    if args.compare:
        compare(args.compare, args.backends)
    if args.shipped:
        shipped()
    if args.republish:
        republish(args.republish)


if __name__ == "__main__":
    main()
