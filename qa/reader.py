"""The reader: marks answer spans inside retrieved passages.

Every implementation has one method, ``read(question, passages)``, that returns
candidate answers (unmerged, any order) with scores in [0, 1], and may carry
a learned ``threshold`` (None: the pipeline's default). The pipeline merges
near-duplicates, sorts them and applies the no-answer threshold.

Readers (``Settings.reader``):

* ``combined`` (default): ``qa.combined_reader``: typed questions to the
  typed-span reader, free-phrase questions to the shipped span model;
* ``typed``: ``qa.span_reader``, typed-span extraction only;
* ``model``: the shipped span model only (``qa/data/span_model``);
* ``transformer``: any local Hugging Face extractive-QA checkpoint
  (``Settings.reader_model``).

The span model and transformer checkpoints run on ``Settings.reader_backend``
(ONNX Runtime int8 by default, see ``qa.hf_reader``).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

from qa.schema import Answer, Passage


class Reader(Protocol):
    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        """Answers found in ``passages``; an empty list when none is likely."""
        ...


def load_reader(settings) -> Reader:
    """The reader chosen by ``settings.reader``, loaded once per process."""
    return _cached_reader(settings.reader, str(settings.reader_model) if settings.reader_model else None,
                          settings.reader_backend, settings.onnx_cache_dir)


@lru_cache(maxsize=2)
def _cached_reader(kind: str, model_path: str | None, backend: str, onnx_cache_dir: Path | None) -> Reader:
    if kind in ("transformer", "model", "combined"):
        from qa.combined_reader import SPAN_MODEL_PATH
        from qa.hf_reader import TransformerReader

        if kind == "transformer" and not model_path:
            raise ValueError("reader=transformer needs QA_READER_MODEL (or --reader-model): "
                             "the folder of a Hugging Face extractive-QA checkpoint")
        model = TransformerReader(model_path or SPAN_MODEL_PATH, backend=backend, onnx_cache_dir=onnx_cache_dir)
        if kind != "combined":
            return model
        from qa.combined_reader import CombinedReader

        return CombinedReader(model=model)
    from qa.span_reader import SpanReader

    return SpanReader()
