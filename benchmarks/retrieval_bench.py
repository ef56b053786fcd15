"""Retrieval quality (recall@k and MRR of the gold review) and end-to-end answer F1.

Run from the repository root, after the indexes exist (``index_bench.py --full``)::

    nice -n 10 .venv/bin/python benchmarks/retrieval_bench.py --imdb --subjqa --shipped
    nice -n 10 .venv/bin/python benchmarks/retrieval_bench.py --sweep        # fusion weights, both dev files
    nice -n 10 .venv/bin/python benchmarks/retrieval_bench.py --e2e          # answer F1 (runs the reader)

``--imdb``: the 50 factual dev questions over the whole 50,000-review index
(``$QA_BENCH_INDEX/imdb-onnx-int8``): recall@1/5/20 and MRR of the gold review for
dense, keyword and hybrid retrieval (weighted sum and RRF), with per-question search time.
``--subjqa``: SubjQA movies dev (dev-corpus.jsonl indexed with the item as the film, in
``$QA_BENCH_INDEX/subjqa-<backend>``, built here if missing): recall@1/3/5 with the
item as the filter (the target) and without any filter.
``--shipped``: the same measures on the small shipped ``documents/`` with the questions of
``benchmarks/shipped-questions.jsonl`` (written for this benchmark, one gold review each).
``--sweep``: recall@5 and MRR for a grid of fusion settings and document weights on the IMDB and SubjQA
questions, to choose ``fusion``/``dense_weight``/``document_weight`` on both kinds of questions at once.
``--e2e``: ``qa eval --mode end-to-end`` figures (top-1 exact match and F1, recall) for the
IMDB questions over 50,000 reviews and for SubjQA with the item filter; this runs the reader.
A review is found at rank r when one of its passages is the r-th distinct review among the
top 100 passages. Results go into ``BENCHMARKS.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import (BENCH_INDEX, IMDB_QUESTIONS, ROOT, SUBJQA_CORPUS, SUBJQA_QUESTIONS,  # noqa: E402
                                machine, table, write_section)

DEPTH = 100  # passages retrieved per question to rank reviews
KS = (1, 3, 5, 20)
SHIPPED_QUESTIONS = ROOT / "benchmarks" / "shipped-questions.jsonl"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def settings_for(index_dir: Path, **update):
    from qa.settings import Settings

    return Settings(index_dir=index_dir).model_copy(update=update)


def rank_of(store, embed, question: str, gold: str, filters=None, **kwargs) -> tuple[int | None, float]:
    from qa.retrieval.search import retrieve

    started = time.perf_counter()
    passages = retrieve(store, embed, question, DEPTH, filters, **kwargs)
    took = time.perf_counter() - started
    ranked: list[str] = []
    for p in passages:
        if p.document_id not in ranked:
            ranked.append(p.document_id)
    return (ranked.index(gold) + 1 if gold in ranked else None), took


def measure(store, embed, questions: list[dict], filter_field: str | None = None, **kwargs) -> dict:
    ranks, times = [], []
    for q in questions:
        filters = {"film": str(q[filter_field])} if filter_field else None
        r, took = rank_of(store, embed, q["question"], q["review_id"], filters, **kwargs)
        ranks.append(r)
        times.append(took)
    out = {f"R@{k}": sum(1 for r in ranks if r and r <= k) / len(ranks) for k in KS}
    out["MRR"] = sum(1 / r for r in ranks if r) / len(ranks)
    out["ms"] = 1000 * sorted(times)[len(times) // 2]
    return out


CONFIGS = [
    ("dense", dict(mode="dense")),
    ("keyword (BM25 + expansion)", dict(mode="keyword")),
]


def hybrid_configs(settings) -> list[tuple[str, dict]]:
    from qa.settings import Settings

    default = Settings.model_fields
    document = settings.document_weight
    return [
        (f"hybrid, weighted sum, dense_weight {settings.dense_weight}, document_weight {document}",
         dict(mode="hybrid", fusion="weighted", dense_weight=settings.dense_weight, document_weight=document)),
        (f"hybrid, weighted sum, dense_weight {settings.dense_weight}, document_weight 0",
         dict(mode="hybrid", fusion="weighted", dense_weight=settings.dense_weight, document_weight=0.0)),
        (f"hybrid, RRF k={settings.rrf_k}, dense_weight 1.0, document_weight {document}",
         dict(mode="hybrid", fusion="rrf", dense_weight=1.0, rrf_k=settings.rrf_k, document_weight=document)),
    ] if default else []


def row(name: str, m: dict, ks=(1, 5, 20)) -> list:
    return [name] + [f"{m[f'R@{k}']:.3f}" for k in ks] + [f"{m['MRR']:.3f}", f"{m['ms']:.0f}"]


def open_store(index_dir: Path):
    from qa.stores.local import LocalStore

    return LocalStore.open(index_dir)


def imdb(backend: str) -> None:
    from qa.embedding.loading import embedder_for

    started_machine = machine()
    index_dir = BENCH_INDEX / f"imdb-{backend}"
    settings = settings_for(index_dir, embedding_backend=backend)
    store = open_store(index_dir)
    embed = embedder_for(settings).encode
    embed(["warm up"])
    questions = load(IMDB_QUESTIONS)
    rows = []
    for name, kwargs in CONFIGS + hybrid_configs(settings):
        m = measure(store, embed, questions, **kwargs)
        print(name, m, flush=True)
        rows.append(row(name, m))
    body = (f"Index: `{index_dir}` ({store.manifest.documents} reviews, {store.manifest.passages} passages, "
            f"{store.index_type} vector index, embedded with {store.manifest.embedding_backend or '?'}); "
            f"{len(questions)} questions of `factual-qa-dev.jsonl`, no filter.\n\n")
    body += table(["retrieval", "recall@1", "recall@5", "recall@20", "MRR", "search p50 ms"], rows)
    body += ("\n\nThe default (`QA_FUSION`, `QA_DENSE_WEIGHT`, `QA_DOCUMENT_WEIGHT`) is the first hybrid row; "
             "the next one is the same without document evidence. 'search' is "
             f"`retrieve()` for {DEPTH} passages (question embedding + both searches + fusion).")
    # The default backend's section keeps its name; another backend's (e.g. torch fp32) sits beside it.
    key, title = "retrieval-imdb", "Retrieval quality: factual questions over 50,000 reviews"
    if backend != "onnx-int8":
        key, title = f"{key}-{backend}", f"{title} ({backend} vectors)"
    write_section(key, title, body, started_machine)


def index_subjqa_corpus(corpus: Path, index_dir: Path, backend: str) -> Path:
    """``qa index`` of a SubjQA-style corpus (``review_id``, ``item_id`` as the film), unless built already."""
    if not (index_dir / "CURRENT").exists():
        import subprocess

        subprocess.run([sys.executable, "-c", "from qa.cli import run; run()", "index", str(corpus),
                        "--index-dir", str(index_dir), "--rebuild", "--quiet",
                        "--id-field", "review_id", "--film-field", "item_id"], cwd=ROOT, check=True,
                       env={**os.environ, "HF_HUB_OFFLINE": "1", "QA_EMBEDDING_BACKEND": backend})
    return index_dir


def ensure_subjqa(backend: str) -> Path:
    return index_subjqa_corpus(SUBJQA_CORPUS, BENCH_INDEX / f"subjqa-{backend}", backend)


def subjqa(backend: str) -> None:
    from qa.embedding.loading import embedder_for

    started_machine = machine()
    index_dir = ensure_subjqa(backend)
    settings = settings_for(index_dir, embedding_backend=backend)
    store = open_store(index_dir)
    embed = embedder_for(settings).encode
    questions = load(SUBJQA_QUESTIONS)
    rows = []
    for filter_field, label in (("item_id", "item filter"), (None, "no filter")):
        for name, kwargs in CONFIGS + hybrid_configs(settings):
            m = measure(store, embed, questions, filter_field, **kwargs)
            print(label, name, m, flush=True)
            rows.append([label] + row(name, m, ks=(1, 3, 5)))
    body = (f"Index: `{index_dir}` ({store.manifest.documents} reviews, {store.manifest.passages} passages; "
            f"`qa index dev-corpus.jsonl --id-field review_id --film-field item_id`); all {len(questions)} "
            "questions of `dev.jsonl` (answerable or not: each names its review).\n\n")
    body += table(["filter", "retrieval", "recall@1", "recall@3", "recall@5", "MRR", "search p50 ms"], rows)
    write_section("retrieval-subjqa", "Retrieval quality: SubjQA movies dev", body, started_machine)


def shipped(backend: str) -> None:
    from qa.embedding.loading import embedder_for
    from qa.ingest.indexer import index_paths

    started_machine = machine()
    index_dir = BENCH_INDEX / f"shipped-{backend}"
    settings = settings_for(index_dir, embedding_backend=backend)
    index_paths([ROOT / "documents"], settings)
    store = open_store(index_dir)
    embed = embedder_for(settings).encode
    questions = load(SHIPPED_QUESTIONS)
    rows = []
    for name, kwargs in CONFIGS + hybrid_configs(settings):
        m = measure(store, embed, questions, **kwargs)
        rows.append(row(name, m, ks=(1, 3, 5)))
    body = (f"Index: `documents/` ({store.manifest.documents} reviews, {store.manifest.passages} passages); "
            f"{len(questions)} questions of `benchmarks/shipped-questions.jsonl`, no filter (a film named in the "
            "question is boosted).\n\n")
    body += table(["retrieval", "recall@1", "recall@3", "recall@5", "MRR", "search p50 ms"], rows)
    write_section("retrieval-shipped", "Retrieval quality: the shipped documents", body, started_machine)


def sweep(backend: str) -> None:
    from qa.embedding.loading import embedder_for

    started_machine = machine()
    imdb_store = open_store(BENCH_INDEX / f"imdb-{backend}")
    subj_store = open_store(ensure_subjqa(backend))
    embed = embedder_for(settings_for(BENCH_INDEX, embedding_backend=backend)).encode
    imdb_q, subj_q = load(IMDB_QUESTIONS), load(SUBJQA_QUESTIONS)
    document = settings_for(BENCH_INDEX).document_weight
    grid = [("weighted", w, 60, document) for w in (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0)]
    grid += [("rrf", w, k, document) for k in (10, 60) for w in (0.5, 1.0, 1.5)]
    grid += [("weighted", 0.3, 60, d) for d in (0.0, 0.3, 0.5, 1.0, 1.5) if d != document]
    rows = []
    for fusion, w, k, d in grid:
        kwargs = dict(mode="hybrid", fusion=fusion, dense_weight=w, rrf_k=k, document_weight=d)
        a = measure(imdb_store, embed, imdb_q, **kwargs)
        b = measure(subj_store, embed, subj_q, "item_id", **kwargs)
        c = measure(subj_store, embed, subj_q, **kwargs)
        print(fusion, w, k, d, a["R@5"], b["R@3"], c["R@5"], flush=True)
        rows.append([fusion, w, k if fusion == "rrf" else "", d, f"{a['R@5']:.3f}", f"{a['MRR']:.3f}",
                     f"{b['R@3']:.3f}", f"{c['R@5']:.3f}", f"{c['MRR']:.3f}"])
    body = ("Hybrid settings on both kinds of questions: factual, name-bearing questions over 50,000 IMDB "
            "reviews, and subjective SubjQA questions (with the item filter, and over all 259 reviews "
            "without it).\n\n")
    body += table(["fusion", "dense_weight", "rrf_k", "document_weight", "IMDB R@5", "IMDB MRR",
                   "SubjQA item-filter R@3", "SubjQA no-filter R@5", "SubjQA no-filter MRR"], rows)
    write_section("retrieval-sweep", "Choosing the fusion", body, started_machine)


def e2e(backend: str, top_k: int) -> None:
    from qa.evaluation import evaluate, load_questions
    from qa.answering.pipeline import Pipeline

    started_machine = machine()
    rows = []
    for name, index_dir, path, filter_field in (
            ("IMDB factual dev, 50,000 reviews", BENCH_INDEX / f"imdb-{backend}", IMDB_QUESTIONS, None),
            ("SubjQA movies dev, item filter", ensure_subjqa(backend), SUBJQA_QUESTIONS, "item_id")):
        pipeline = Pipeline(settings_for(index_dir, embedding_backend=backend))
        pipeline.warm_up()
        report = evaluate(pipeline, load_questions(path), mode="end-to-end", top_k=top_k, filter_field=filter_field)
        print(report.summary(name), flush=True)
        rows.append([name, report.questions, f"{report.exact_match:.3f}", f"{report.f1:.3f}",
                     f"{report.answerable_f1:.3f}" if report.unanswerable else "",
                     f"{report.recall.get('recall@5', 0):.3f}", f"{report.p50_ms:.0f} / {report.p95_ms:.0f}"])
    body = table(["questions", "n", "top-1 EM", "top-1 F1", "answerable F1", "recall@5", "ask p50 / p95 ms"], rows)
    body += (f"\n\nSame as `qa eval <questions> --mode end-to-end --top-k {top_k} --index-dir <index>` "
             "(`--filter-field item_id` for SubjQA). The reader is the shipped span model, or `QA_READER_MODEL`.")
    write_section("e2e", "End-to-end answers", body, started_machine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--imdb", action="store_true")
    parser.add_argument("--subjqa", action="store_true")
    parser.add_argument("--shipped", action="store_true")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--e2e", action="store_true")
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.sweep:
        sweep(args.backend)
    if args.imdb:
        imdb(args.backend)
    if args.subjqa:
        subjqa(args.backend)
    if args.shipped:
        shipped(args.backend)
    if args.e2e:
        e2e(args.backend, args.top_k)


if __name__ == "__main__":
    main()
