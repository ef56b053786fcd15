"""SQuADShifts (human-written questions over Amazon reviews, Reddit posts and new Wikipedia articles).

The held-out split is fixed by hashing each question's *group*, so that no paragraph, product or
article of the held-out part is ever trained on:

- Amazon: the product id (``title``),
- Wikipedia: the article (``title``),
- Reddit: the post (``context_id``; all posts share one "article").

One group in five is held out (``heldout``), and the held-out groups are halved again into ``dev``
(for choosing designs, the calibration and the no-answer threshold) and ``test`` (the figure that is
reported). ``train`` is everything else.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

from benchmarks._common import DATA  # the one place the shared data's path is decided

SQUADSHIFTS = DATA / "squadshifts"
FILES = ("amazon-train", "new-wiki", "reddit")

Split = Literal["train", "dev", "test", "heldout"]


@dataclass
class Question:
    id: str
    source: str
    group: str
    context_id: str
    question: str
    context: str
    answers: list[dict] = field(default_factory=list)  # [{"text", "start", "end"}]


def group_of(row: dict) -> str:
    return f"{row['source']}/{row['title'] or row['context_id']}" if row["source"] != "reddit" \
        else f"reddit/{row['context_id']}"


def split_of(group: str) -> Split:
    """``train`` for 4 groups in 5; the rest ``dev`` or ``test``, half each, by a stable hash."""
    h = int(hashlib.sha1(group.encode()).hexdigest(), 16)
    if h % 5:
        return "train"
    return "dev" if (h // 5) % 2 == 0 else "test"


def load(split: Split, root: Path = SQUADSHIFTS) -> list[Question]:
    """The questions of one split (``heldout`` = ``dev`` + ``test``)."""
    wanted = {"dev", "test"} if split == "heldout" else {split}
    return [q for q in _rows(root) if split_of(q.group) in wanted]


def _rows(root: Path) -> Iterator[Question]:
    for name in FILES:
        with gzip.open(root / f"{name}.jsonl.gz", "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                yield Question(r["id"], r["source"], group_of(r), r["context_id"], r["question"], r["context"],
                               r["answers"])
