"""Flat against HNSW: search time by collection size, and HNSW recall against exact search.

Run from the repository root, after the 50,000-review index exists::

    nice -n 10 .venv/bin/python benchmarks/vector_index_bench.py

Takes the passage vectors of ``$QA_BENCH_INDEX/imdb-onnx-int8`` and the questions of both
dev files (embedded with the same model) as queries. For growing prefixes of the
collection it measures, one query at a time with 2 threads as ``/ask`` does: exact
(IndexFlatIP) search time for k=50 (the depth hybrid retrieval reads), and for HNSW
(``--m`` neighbours, efConstruction ``--ef-construction``) the build time, search time
and recall@10 / recall@50 against the exact results for several efSearch values. This
is the evidence for ``hnsw_threshold`` and ``hnsw_ef_search``. Results go into
``BENCHMARKS.md`` (section ``vector-index-m<M>-efc<efConstruction>``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BENCH_INDEX, IMDB_QUESTIONS, SUBJQA_QUESTIONS, machine, table, write_section  # noqa: E402

K = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-dir", type=Path, default=BENCH_INDEX / "imdb-onnx-int8")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000, 80_000, 0])
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, nargs="+", default=[128, 256, 512, 768])
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import faiss
    import numpy as np

    from qa.embedding.loading import embedder_for
    from qa.settings import Settings
    from qa.stores.local import LocalStore
    from qa.stores.local.vectors import flat_view, to_flat

    started_machine = machine()
    faiss.omp_set_num_threads(2)
    store = LocalStore.open(args.index_dir)
    flat_all = to_flat(store.vectors)
    vectors = np.array(flat_view(flat_all.index))
    backend = store.manifest.embedding_backend or "onnx-int8"
    store.close()
    del flat_all
    qs = [json.loads(line)["question"] for path in (IMDB_QUESTIONS, SUBJQA_QUESTIONS)
          for line in open(path, encoding="utf-8") if line.strip()]
    queries = embedder_for(Settings(embedding_backend=backend)).encode(qs)
    print(f"{len(vectors)} vectors, {len(queries)} queries", flush=True)

    def timed_search(index, params=None):
        ids, times = [], []
        for q in queries:
            t = time.perf_counter()
            _, i = index.search(q.reshape(1, -1), K, params=params)
            times.append(time.perf_counter() - t)
            ids.append(i[0])
        return ids, 1000 * float(np.median(times)), 1000 * float(np.percentile(times, 95))

    size_rows, ef_rows = [], []
    for n in args.sizes:
        n = n or len(vectors)
        if n > len(vectors):
            continue
        xb = np.ascontiguousarray(vectors[:n])
        flat = faiss.IndexFlatIP(xb.shape[1])
        flat.add(xb)
        exact, flat_p50, flat_p95 = timed_search(flat)
        hnsw = faiss.IndexHNSWFlat(xb.shape[1], args.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = args.ef_construction
        t = time.perf_counter()
        hnsw.add(xb)
        build = time.perf_counter() - t
        best = None
        for ef in args.ef:
            found, p50, p95 = timed_search(hnsw, faiss.SearchParametersHNSW(efSearch=max(ef, K)))
            r10 = np.mean([len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(found, exact)])
            r50 = np.mean([len(set(a) & set(b)) / K for a, b in zip(found, exact)])
            ef_rows.append([n, max(ef, K), f"{r10:.4f}", f"{r50:.4f}", f"{p50:.2f}", f"{p95:.2f}"])
            print(n, ef, r10, r50, p50, flush=True)
            if best is None and r50 >= 0.98:
                best = (max(ef, K), p50)
        size_rows.append([n, f"{flat_p50:.2f}", f"{flat_p95:.2f}", f"{build:.1f}",
                          f"{best[1]:.2f} (efSearch {best[0]})" if best else "recall@50 < 0.98 at every efSearch",
                          f"{n * xb.shape[1] * 4 / 1e6:.0f}", f"{hnsw.hnsw.neighbors.size() * 4 / 1e6:.0f}"])
        print(size_rows[-1], flush=True)
    body = (f"Vectors: the passages of `{args.index_dir}` (384 dimensions, {backend}); queries: {len(queries)} dev "
            f"questions; k={K}; one query at a time, 2 threads. HNSW M={args.m}, efConstruction="
            f"{args.ef_construction}.\n\n")
    body += table(["passages", "flat p50 ms", "flat p95 ms", "HNSW build s",
                   "HNSW p50 ms at the first efSearch with recall@50 >= 0.98", "vectors MB", "HNSW graph MB"],
                  size_rows)
    body += "\n\nHNSW recall against exact search:\n\n"
    body += table(["passages", "efSearch", "recall@10", "recall@50", "p50 ms", "p95 ms"], ef_rows)
    write_section(f"vector-index-m{args.m}-efc{args.ef_construction}",
                  f"Vector index: flat or HNSW (M={args.m}, efConstruction={args.ef_construction})", body,
                  started_machine)


if __name__ == "__main__":
    main()
