"""Measure a reader in reading mode (it gets the gold review's passages only).

    .venv/bin/python training/eval_reader.py [--reader R] [--reader-model DIR] [--reader-backend B] [--threshold T]

Prints, for factual-qa-dev and subjqa-movies dev: SQuAD-style EM and F1 of
the top answer (max over gold answers), F1 on the answerable questions,
no-answer accuracy on the unanswerable ones, a per-kind F1 breakdown for the
factual file, and the reading time per question.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.evaluation import exact_match, f1_score  # noqa: E402
from qa.pipeline import DEFAULT_NO_ANSWER_THRESHOLD  # noqa: E402
from qa.passages import split_document  # noqa: E402
from qa.schema import Document, Passage  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
FACTUAL_DEV = SHARED / "imdb-reviews" / "factual-qa-dev.jsonl"
IMDB_REVIEWS = SHARED / "imdb-reviews" / "reviews.jsonl.gz"
SUBJQA_MOVIES_DEV = SHARED / "subjqa-movies" / "dev.jsonl"

MAX_PASSAGE_WORDS = 200  # the brief: paragraphs longer than ~200 words become sentence windows


# --------------------------------------------------------------------------- passages


def split_passages(doc_id: str, text: str, max_words: int = MAX_PASSAGE_WORDS) -> list[Passage]:
    """The review's passages exactly as `qa index` cuts them."""
    return split_document(Document(id=doc_id, text=text), max_words)


# --------------------------------------------------------------------------- metric
# The product's own SQuAD-style metrics (qa.evaluation), so both tools measure alike.
token_f1 = f1_score


def best_over_golds(metric: Any, prediction: str, golds: list[str]) -> float:
    return max((metric(prediction, g) for g in golds), default=0.0)


# --------------------------------------------------------------------------- data


@dataclass
class Example:
    id: str
    question: str
    passages: list[Passage]
    answers: list[str]  # empty: unanswerable
    kind: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def load_factual_dev() -> list[Example]:
    rows = [json.loads(line) for line in FACTUAL_DEV.open()]
    wanted = {r["review_id"] for r in rows}
    texts: dict[str, str] = {}
    with gzip.open(IMDB_REVIEWS, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["id"] in wanted:
                texts[d["id"]] = d["text"]
    return [
        Example(r["id"], r["question"], split_passages(r["review_id"], texts[r["review_id"]]),
                [a["text"] for a in r["answers"]], r["kind"])
        for r in rows
    ]


def load_subjqa(path: Path) -> list[Example]:
    out = []
    for line in path.open():
        r = json.loads(line)
        out.append(
            Example(r["id"], r["question"], split_passages(r["review_id"], r["review"]),
                    [a["text"] for a in r["answers"]], r.get("domain", "movies"))
        )
    return out


# --------------------------------------------------------------------------- evaluation


def evaluate(reader: Any, examples: list[Example], threshold: float) -> dict[str, Any]:
    """EM/F1 of the top answer, answerable F1, no-answer accuracy, per-kind F1, ms/question."""
    em, f1, ans_f1, noans = [], [], [], []
    per_kind: dict[str, list[float]] = defaultdict(list)
    predictions = []
    t0 = time.perf_counter()
    for ex in examples:
        answers = reader.read(ex.question, ex.passages)
        best = max(answers, key=lambda a: a.score, default=None)
        predicted = best.text if best is not None and best.score >= threshold else ""
        if ex.answers:
            e = best_over_golds(exact_match, predicted, ex.answers) if predicted else 0.0
            f = best_over_golds(token_f1, predicted, ex.answers) if predicted else 0.0
            ans_f1.append(f)
        else:
            e = f = float(predicted == "")
            noans.append(f)
        em.append(e)
        f1.append(f)
        per_kind[ex.kind].append(f)
        predictions.append((ex, best, predicted, f))
    elapsed = time.perf_counter() - t0

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    return {
        "n": len(examples),
        "em": mean(em),
        "f1": mean(f1),
        "answerable_f1": mean(ans_f1),
        "n_answerable": len(ans_f1),
        "no_answer_acc": mean(noans),
        "n_unanswerable": len(noans),
        "per_kind_f1": {k: (mean(v), len(v)) for k, v in sorted(per_kind.items())},
        "ms_per_question": 1000 * elapsed / max(1, len(examples)),
        "predictions": predictions,
    }


def print_report(name: str, result: dict[str, Any], per_kind: bool = False) -> None:
    print(f"== {name} (n={result['n']})")
    print(
        f"   EM {result['em']:.3f}  F1 {result['f1']:.3f}  answerable F1 {result['answerable_f1']:.3f} "
        f"(n={result['n_answerable']})  no-answer acc {result['no_answer_acc']:.3f} (n={result['n_unanswerable']})  "
        f"{result['ms_per_question']:.0f} ms/question"
    )
    if per_kind:
        for kind, (value, n) in result["per_kind_f1"].items():
            print(f"   {kind:10s} F1 {value:.3f} (n={n})")


def time_reader(reader: Any, examples: list[Example], n_passages: int = 5, repeats: int = 3) -> float:
    """Median milliseconds to read ``n_passages`` passages (models already loaded)."""
    import statistics

    times = []
    for _ in range(repeats):
        for ex in examples:
            passages = ex.passages[:n_passages]
            if len(passages) < n_passages:
                continue
            t = time.perf_counter()
            reader.read(ex.question, passages)
            times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times) if times else float("nan")


def main() -> None:
    from qa.span_reader import SpanReader

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threshold", type=float, default=None, help="no-answer threshold (default: the learned one)")
    ap.add_argument("--params", default=None, help="parameters file (default qa/data/span_reader.json)")
    ap.add_argument("--reader", default=None, choices=["typed", "model", "combined", "transformer"],
                    help="which reader (default: the product's default, QA_READER)")
    ap.add_argument("--reader-model", default=None, help="checkpoint folder for --reader transformer / model")
    ap.add_argument("--reader-backend", default=None, choices=["onnx-int8", "onnx", "torch"],
                    help="how the span model runs (default: QA_READER_BACKEND)")
    ap.add_argument("--show-errors", action="store_true", help="print the factual questions answered wrongly")
    args = ap.parse_args()

    if args.params:
        reader = SpanReader(params_path=args.params)
    else:
        from qa.reader import load_reader
        from qa.settings import Settings

        update = {k: v for k, v in (("reader", args.reader), ("reader_model", args.reader_model),
                                                     ("reader_backend", args.reader_backend)) if v}
        reader = load_reader(Settings().model_copy(update=update))
    threshold = getattr(reader, "threshold", None) if args.threshold is None else args.threshold
    threshold = DEFAULT_NO_ANSWER_THRESHOLD if threshold is None else threshold
    print(f"threshold {threshold:.3f}")
    factual = load_factual_dev()
    movies = load_subjqa(SUBJQA_MOVIES_DEV)
    reader.read("warm up", factual[0].passages)

    r_fact = evaluate(reader, factual, threshold)
    print_report("factual-qa-dev", r_fact, per_kind=True)
    r_mov = evaluate(reader, movies, threshold)
    print_report("subjqa-movies dev", r_mov)
    if args.show_errors:
        for ex, best, predicted, f in r_fact["predictions"]:
            if f < 1:
                score = f"{best.score:.2f}" if best else "-"
                print(f"   [{ex.kind}] {ex.question!r}: got {predicted!r} ({score}), gold {ex.answers}")

    # Timing on windows of 5 passages (sentence windows of ~60 words, like a retriever's hits).
    five = [Example(ex.id, ex.question, split_passages(ex.id, " ".join(p.text for p in ex.passages), 60), ex.answers)
            for ex in factual]
    print(f"reading 5 passages: {time_reader(reader, five):.0f} ms (median)")
    sizes = [len(p.text.split()) for ex in five for p in ex.passages[:5]]
    print(f"   (passages of {sum(sizes) / len(sizes):.0f} words on average)")


if __name__ == "__main__":
    main()
