"""The reader: marks answer spans inside retrieved passages.

Every implementation has one method, ``read(question, passages)``, that returns
candidate answers (unmerged, any order) with scores in [0, 1]. The pipeline
merges near-duplicates, sorts them and applies the no-answer threshold.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Protocol, Sequence

from qa.schema import Answer, Passage


class Reader(Protocol):
    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        """Answers found in ``passages``; an empty list when none is likely."""
        ...


def load_reader(settings) -> Reader:
    """The reader chosen by ``settings.reader`` (``span``: built in; ``transformer``: a local checkpoint)."""
    return _cached_reader(settings.reader, str(settings.reader_model) if settings.reader_model else None)


@lru_cache(maxsize=2)
def _cached_reader(kind: str, model_path: str | None) -> Reader:
    if kind == "transformer":
        if not model_path:
            raise ValueError("reader=transformer needs QA_READER_MODEL (or --reader-model): "
                             "the folder of a Hugging Face extractive-QA checkpoint")
        from qa.hf_reader import TransformerReader

        return TransformerReader(model_path)
    from qa.span_reader import SpanReader

    return SpanReader()
