"""The nouns of the product, shared by every layer.

Data flows one way: Document -> Passage -> (index) -> retrieved Passage -> Answer.
Offsets are character offsets into Python strings (code points), so for any
answer ``document.text[answer.document_start:answer.document_end] == answer.text``.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One review as loaded from disk."""

    id: str
    text: str
    film: str | None = None
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # file the review came from (for messages)
    line: int | None = None  # its line in that file, for JSON Lines and CSV


@dataclass(frozen=True)
class Passage:
    """A paragraph (or a window of a long paragraph) of a document.

    ``text == document.text[document_start:document_start + len(text)]``.
    ``score`` is set when the passage comes back from retrieval.
    """

    id: str
    document_id: str
    text: str
    document_start: int
    film: str | None = None
    title: str | None = None
    score: float = 0.0

    @property
    def document_end(self) -> int:
        return self.document_start + len(self.text)


@dataclass(frozen=True)
class Source:
    """One place an answer was found."""

    document_id: str
    passage_id: str
    document_start: int
    document_end: int
    score: float = 0.0
    film: str | None = None


@dataclass
class Answer:
    """A span of a passage that answers the question.

    ``start``/``end`` are offsets in the passage text, ``document_start``/
    ``document_end`` in the whole document. ``score`` is in [0, 1]: the
    reader's estimate that this span is a right answer.
    """

    text: str
    score: float
    passage_id: str
    document_id: str
    start: int
    end: int
    document_start: int
    document_end: int
    film: str | None = None
    sources: list[Source] = field(default_factory=list)

    @classmethod
    def in_passage(cls, passage: Passage, start: int, end: int, score: float) -> "Answer":
        """Build the answer for ``passage.text[start:end]`` with both sets of offsets."""
        return cls(
            text=passage.text[start:end],
            score=float(score),
            passage_id=passage.id,
            document_id=passage.document_id,
            start=start,
            end=end,
            document_start=passage.document_start + start,
            document_end=passage.document_start + end,
            film=passage.film,
        )


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "’‘“”")


def normalize_answer(text: str) -> str:
    """SQuAD normalisation of an answer text: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())
