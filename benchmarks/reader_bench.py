"""Answer quality of a reader on every question set, by question kind.

    .venv/bin/python benchmarks/reader_bench.py [--reader-model DIR] [--split test] [--sets ...] [--write]

Question sets (``--sets``, all by default):

- ``documents``: ``benchmarks/natural/documents.jsonl``, questions typed as people type them about the
  shipped ``documents/``, asked **end to end** as the chat asks them (the whole index of ``documents/``,
  no filter); some have no answer in any review.
- ``imdb``: ``benchmarks/natural/imdb.jsonl``, the same kind of questions over IMDB reviews of films
  that are not in ``factual-qa-dev.jsonl``, in **reading mode** (the reader gets the gold review's passages).
- ``squadshifts``: the held-out SQuADShifts questions (``training/squadshifts.py``), each read in its
  own paragraph.
- ``films``: ``benchmarks/natural/films.jsonl``, more such questions over IMDB reviews of other films, written
  to the same brief as the span model's film training questions but never trained or tuned on; reading mode,
  used whole.
- ``factual``: ``factual-qa-dev.jsonl`` in reading mode; ``subjqa``: SubjQA movies dev in reading mode.

The natural sets and SQuADShifts have a ``dev`` half (for choosing designs, calibration and the
no-answer threshold) and a ``test`` half (the reported figure); ``--split`` picks one (``all``: both).
``films``, ``factual`` and ``subjqa`` are used whole.

The reader is the product's default (``Settings()``), or the span model in ``--reader-model``. Each
question gets the reader's best span whatever its score, and the no-answer threshold then decides
(``F1``; ``answerable F1`` on the questions that have an answer). ``forced F1`` is reading comprehension
as SQuAD v1 measures it, on the answerable questions: the best span even where the model would rather
say "no answer" (SQuADShifts; elsewhere the best span the model proposes). ``--write`` puts the table
into ``BENCHMARKS.md``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._common import (IMDB_QUESTIONS, SUBJQA_QUESTIONS, imdb_texts, read_jsonl, table,  # noqa: E402
                                write_section)
from qa.evaluation import score as answer_score  # noqa: E402
from qa.ingest.passages import split_document  # noqa: E402
from qa.schema import Document, Passage  # noqa: E402

NATURAL = ROOT / "benchmarks" / "natural"
SETS = ("documents", "imdb", "films", "squadshifts", "factual", "subjqa")


@dataclass
class Question:
    set: str
    id: str
    question: str
    answers: list[str]
    kind: str
    split: str
    passages: list[Passage]  # reading mode: what the reader gets; end to end: []


@dataclass
class Record:
    """One question answered: the best span whatever its score, its score and its F1."""

    set: str
    id: str
    kind: str
    split: str
    answerable: bool
    text: str | None
    score: float
    f1: float  # F1 of ``text`` against the golds (answerable questions), 0 when there is no span
    forced_f1: float | None = None  # F1 of the best span even where the model prefers "no answer" (squadshifts)


# --------------------------------------------------------------------------- question sets


def _passages(doc_id: str, text: str, max_words: int = 200) -> list[Passage]:
    return split_document(Document(id=doc_id, text=text), max_words)


def load_set(name: str, split: str, limit: int = 0) -> list[Question]:
    """The questions of one set (``split``: dev, test or all)."""
    keep = (lambda s: True) if split == "all" else (lambda s: s == split)
    out: list[Question] = []
    if name == "documents":
        for r in read_jsonl(NATURAL / "documents.jsonl"):
            if keep(r["split"]):
                out.append(Question(name, r["id"], r["question"], [a["text"] for a in r["answers"]], r["kind"],
                                    r["split"], []))
    elif name in ("imdb", "films", "factual"):
        if name == "imdb":
            rows = [r for r in read_jsonl(NATURAL / "imdb.jsonl") if keep(r["split"])]
        else:  # used whole
            rows = [dict(r, split="all") for r in read_jsonl(NATURAL / "films.jsonl" if name == "films" else IMDB_QUESTIONS)]
        texts = imdb_texts({r["review_id"] for r in rows})
        for r in rows:
            out.append(Question(name, r["id"], r["question"], [a["text"] for a in r["answers"]],
                                r["kind"] if r["answers"] else "unanswerable", r["split"],
                                _passages(r["review_id"], texts[r["review_id"]])))
    elif name == "subjqa":
        for r in read_jsonl(SUBJQA_QUESTIONS):
            answers = [a["text"] for a in r["answers"]]
            out.append(Question(name, r["id"], r["question"], answers, "answerable" if answers else "unanswerable",
                                "all", _passages(r["review_id"], r["review"])))
    elif name == "squadshifts":
        from training import squadshifts

        for q in squadshifts.load("heldout"):
            s = squadshifts.split_of(q.group)
            if keep(s):
                out.append(Question(name, q.id, q.question, sorted({a["text"] for a in q.answers}), q.source, s,
                                    [Passage(id=f"{q.context_id}#0", document_id=q.context_id, text=q.context,
                                             document_start=0)]))
    else:
        raise ValueError(f"unknown question set {name!r}; known: {', '.join(SETS)}")
    if limit and len(out) > limit:
        out = random.Random(7).sample(out, limit)
    return out


# --------------------------------------------------------------------------- answering


def documents_pipeline(reader: Any, workdir: Path):
    """A pipeline over an index of the shipped ``documents/`` built in ``workdir``, with ``reader``,
    that returns its best answer whatever its score."""
    from qa.ingest.indexer import index_paths
    from qa.answering.pipeline import Pipeline
    from qa.settings import Settings

    settings = Settings(index_dir=workdir / "index", no_answer_threshold=0.0)
    index_paths([ROOT / "documents"], settings, quiet=True)
    return Pipeline(settings, reader=reader)


def answer_all(reader: Any, questions: Sequence[Question], pipeline: Any = None) -> list[Record]:
    """Each question's best span (any score); end to end through ``pipeline`` when it has no passages."""
    records = []
    for q in questions:
        if q.passages:
            best = max(reader.read(q.question, q.passages), key=lambda a: a.score, default=None)
        else:
            result = pipeline.ask(q.question)
            best = result.answers[0] if result.answers else None
        text = best.text if best is not None else None
        f1 = answer_score(text, q.answers)[1] if q.answers and text is not None else 0.0
        records.append(Record(q.set, q.id, q.kind, q.split, bool(q.answers), text,
                              best.score if best is not None else 0.0, f1))
    return records


def collect(reader: Any, sets: Iterable[str], split: str, limit: int = 0) -> list[Record]:
    """Records for every question of ``sets``."""
    records: list[Record] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in sets:
            questions = load_set(name, split, limit)
            pipeline = documents_pipeline(reader, Path(tmp)) if name == "documents" else None
            mine = answer_all(reader, questions, pipeline)
            if name == "squadshifts" and hasattr(reader, "null_margin"):
                # reading comprehension as SQuAD v1 measures it: the best span, even below the null answer
                kept, reader.null_margin = reader.null_margin, math.inf
                try:
                    for r, forced in zip(mine, answer_all(reader, questions)):
                        r.forced_f1 = forced.f1
                finally:
                    reader.null_margin = kept
            records += mine
            print(f"   {name}: {len(questions)} questions read", file=sys.stderr, flush=True)
    return records


# --------------------------------------------------------------------------- scores


def f1_at(records: Sequence[Record], threshold: float) -> float:
    """Mean F1 when answering only at or above ``threshold`` (declining an unanswerable one scores 1)."""
    return mean([_f1(r, threshold) for r in records])


def _f1(r: Record, threshold: float) -> float:
    answered = r.text is not None and r.score >= threshold and r.score > 0
    return (r.f1 if answered else 0.0) if r.answerable else float(not answered)


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def summary(records: Sequence[Record], threshold: float) -> dict[str, Any]:
    ans = [r for r in records if r.answerable]
    unans = [r for r in records if not r.answerable]
    kinds: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        kinds[r.kind].append(r)
    return {
        "n": len(records),
        "f1": f1_at(records, threshold),
        "answerable_f1": f1_at(ans, threshold) if ans else float("nan"),
        "forced_f1": mean([r.f1 if r.forced_f1 is None else r.forced_f1 for r in ans]) if ans else float("nan"),
        "declined": f1_at(unans, threshold) if unans else float("nan"),
        "n_unanswerable": len(unans),
        "kinds": {k: (f1_at(v, threshold), len(v)) for k, v in sorted(kinds.items())},
    }


def report(records: Sequence[Record], threshold: float) -> str:
    rows = []
    for name in SETS:
        mine = [r for r in records if r.set == name]
        if not mine:
            continue
        s = summary(mine, threshold)
        kinds = ", ".join(f"{k} {v:.2f} ({n})" for k, (v, n) in s["kinds"].items())
        declined = f"{s['declined']:.2f} of {s['n_unanswerable']}" if s["n_unanswerable"] else "-"
        rows.append([name, s["n"], f"{s['f1']:.3f}", f"{s['answerable_f1']:.3f}", f"{s['forced_f1']:.3f}", declined,
                     kinds])
    return table(["set", "questions", "F1", "answerable F1", "forced F1", "unanswerable declined", "F1 by kind (n)"],
                 rows)


def reading_ms(reader: Any, repeats: int = 3) -> tuple[float, float]:
    """Median milliseconds to read five passages, and their mean length in words.

    The passages are those a retriever hands over for a factual dev question: its review cut
    into windows of about 60 words, the first five (models already loaded)."""
    import statistics
    import time

    times, words = [], []
    questions = load_set("factual", "all")
    reader.read("warm up", questions[0].passages)
    for _ in range(repeats):
        for q in questions:
            five = _passages(q.id, " ".join(p.text for p in q.passages), 60)[:5]
            if len(five) < 5:
                continue
            words += [len(p.text.split()) for p in five]
            t = time.perf_counter()
            reader.read(q.question, five)
            times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times), sum(words) / len(words)


def load_reader(model_dir: Path | None, backend: str, calibrated: bool = True, normalize: str | None = None,
                passage_prior: float | None = None, null_margin: float | None = None) -> Any:
    """The product's default reader, or the span model in ``model_dir`` (``normalize``, ``passage_prior``,
    ``null_margin``: see TransformerReader)."""
    if model_dir is None and normalize is None and passage_prior is None and null_margin is None:
        from qa.reading.base import load_reader as product_reader
        from qa.settings import Settings

        return product_reader(Settings(reader_backend=backend))
    from qa.reading.transformer import TransformerReader

    from qa.reading.base import SPAN_MODEL_PATH

    return TransformerReader(model_dir or SPAN_MODEL_PATH, backend=backend, calibrated=calibrated, normalize=normalize,
                             passage_prior=passage_prior, null_margin=null_margin)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reader-model", type=Path, default=None, help="a span-model folder (default: the product's reader)")
    ap.add_argument("--backend", default="onnx-int8", choices=["onnx-int8", "onnx", "torch"])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--split", default="test", choices=["dev", "test", "all"])
    ap.add_argument("--threshold", type=float, default=None, help="no-answer threshold (default: the reader's)")
    ap.add_argument("--limit", type=int, default=0, help="at most N questions per set (a quick look)")
    ap.add_argument("--dump", type=Path, default=None, help="write the records as JSON Lines")
    ap.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    ap.add_argument("--speed", action="store_true", help="only time reading five passages")
    ap.add_argument("--normalize", default=None, choices=["window", "question"],
                    help="how span scores are normalised (default: the model's reader.json)")
    ap.add_argument("--passage-prior", type=float, default=None,
                    help="weight of the retrieval score in span scores (default: the model's reader.json)")
    ap.add_argument("--null-margin", type=float, default=None,
                    help="how far below the null answer a span may score and still be proposed (default: the "
                         "model's reader.json)")
    args = ap.parse_args()
    reader = load_reader(args.reader_model, args.backend, normalize=args.normalize, passage_prior=args.passage_prior,
                         null_margin=args.null_margin)
    if args.speed:
        ms, words = reading_ms(reader)
        body = (f"Reading five passages (about {words:.0f} words each, the first five 60-word windows of each "
                f"factual dev review; {args.backend}): **{ms:.1f} ms** median over 3 rounds of 50 questions.")
        print(body)
        if args.write:
            write_section("reader-speed", "Reading speed", body)
        return
    threshold = args.threshold if args.threshold is not None else getattr(reader, "threshold", None)
    if threshold is None:
        from qa.answering.pipeline import DEFAULT_NO_ANSWER_THRESHOLD

        threshold = DEFAULT_NO_ANSWER_THRESHOLD
    records = collect(reader, args.sets, args.split, args.limit)
    if args.dump:
        args.dump.write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))
    body = f"No-answer threshold {threshold:.2f}; {args.split} split.\n\n" + report(records, threshold)
    print(body)
    if args.write:
        write_section(f"reader-{args.split}", f"Reader quality ({args.split} questions)", body)


if __name__ == "__main__":
    main()
