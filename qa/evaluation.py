"""Measuring answer quality on question files with gold answer spans.

Reads the formats of ``factual-qa-dev.jsonl`` (IMDB) and SubjQA's ``dev.jsonl``:
each line has ``question``, ``review_id`` and ``answers`` (``[]`` when the
review does not answer it). Scores are SQuAD-style exact match and token F1
of the top answer against the best-matching gold answer; an unanswerable
question scores 1 only when the system answers none.

Modes: ``reading`` restricts retrieval to the gold review (only the reader is
measured); ``end-to-end`` searches the whole index (optionally filtered by a
question field such as SubjQA's ``item_id``) and also reports recall@k of
the gold review.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from qa.answering.pipeline import Pipeline
from qa.schema import normalize_answer


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    review_id: str
    answers: tuple[str, ...]
    kind: str = ""
    fields: dict = field(default_factory=dict, hash=False, compare=False)


def load_questions(path: Path) -> list[EvalQuestion]:
    items = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                items.append(EvalQuestion(
                    id=str(row.get("id", line_no)), question=row["question"], review_id=str(row["review_id"]),
                    answers=tuple(a["text"] for a in row.get("answers") or []),
                    kind=row.get("kind") or ("answerable" if row.get("answers") else "unanswerable"),
                    fields={k: v for k, v in row.items() if isinstance(v, (str, int))}))
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{line_no}: not a question record ({error})") from error
    return items


def f1_score(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if not pred or not ref:
        return float(pred == ref)
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def score(prediction: str | None, golds: Sequence[str]) -> tuple[float, float]:
    """(exact match, F1) of one prediction; ``None`` means 'no answer'."""
    if not golds:
        return (1.0, 1.0) if prediction is None else (0.0, 0.0)
    if prediction is None:
        return 0.0, 0.0
    em = max(exact_match(prediction, g) for g in golds)
    return em, max(f1_score(prediction, g) for g in golds)


@dataclass
class EvalReport:
    mode: str
    questions: int = 0
    exact_match: float = 0.0
    f1: float = 0.0
    answerable: int = 0
    answerable_f1: float = 0.0
    unanswerable: int = 0
    no_answer_accuracy: float = 0.0
    recall: dict[str, float] = field(default_factory=dict)
    f1_by_kind: dict[str, float] = field(default_factory=dict)
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    missing_reviews: int = 0

    def summary(self, name: str) -> str:
        lines = [f"{name} ({self.mode}, {self.questions} questions)",
                 f"  exact match        {self.exact_match:.3f}",
                 f"  F1                 {self.f1:.3f}"]
        if self.answerable and self.unanswerable:
            lines.append(f"  answerable F1      {self.answerable_f1:.3f}  ({self.answerable} questions)")
            lines.append(f"  no-answer accuracy {self.no_answer_accuracy:.3f}  ({self.unanswerable} questions)")
        for k, v in self.recall.items():
            lines.append(f"  {k:18} {v:.3f}")
        for kind, v in sorted(self.f1_by_kind.items()):
            lines.append(f"  F1 {kind:15} {v:.3f}")
        lines.append(f"  latency p50/p95    {self.p50_ms:.0f} / {self.p95_ms:.0f} ms")
        if self.missing_reviews:
            lines.append(f"  ({self.missing_reviews} gold reviews were not in the index)")
        return "\n".join(lines)


def evaluate(pipeline: Pipeline, items: Sequence[EvalQuestion], mode: str = "reading", top_k: int = 5,
             filter_field: str | None = None, recall_at: Sequence[int] = (1, 3, 5, 20)) -> EvalReport:
    import numpy as np

    report = EvalReport(mode=mode, questions=len(items))
    ems, f1s, ans_f1, noans, latencies = [], [], [], [], []
    by_kind: dict[str, list[float]] = defaultdict(list)
    hits = {k: 0 for k in recall_at}
    known = {i.review_id for i in items if pipeline.store.document(i.review_id) is not None}
    report.missing_reviews = len({i.review_id for i in items} - known)
    for item in items:
        if mode == "reading":
            filters = {"document_id": item.review_id}
        elif filter_field:
            filters = {"film": str(item.fields.get(filter_field, ""))}
        else:
            filters = None
        depth = max(top_k, max(recall_at)) if mode != "reading" else top_k
        result = pipeline.ask(item.question, top_k, filters)
        latencies.append(result.took_ms)
        prediction = None if result.no_answer else result.answers[0].text
        em, f1 = score(prediction, item.answers)
        ems.append(em)
        f1s.append(f1)
        by_kind[item.kind].append(f1)
        (ans_f1 if item.answers else noans).append(f1)
        if mode != "reading":
            ranked = []
            for p in pipeline.search(result.resolved_question, depth, result.filters or None):
                if p.document_id not in ranked:
                    ranked.append(p.document_id)
            for k in recall_at:
                hits[k] += item.review_id in ranked[:k]
    mean = lambda xs: float(np.mean(xs)) if xs else 0.0  # noqa: E731
    report.exact_match, report.f1 = mean(ems), mean(f1s)
    report.answerable, report.answerable_f1 = len(ans_f1), mean(ans_f1)
    report.unanswerable, report.no_answer_accuracy = len(noans), mean(noans)
    report.f1_by_kind = {k: mean(v) for k, v in by_kind.items()} if len(by_kind) > 1 else {}
    if mode != "reading":
        report.recall = {f"recall@{k}": hits[k] / max(len(items), 1) for k in recall_at}
    if latencies:
        report.p50_ms, report.p95_ms = float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95))
    return report
