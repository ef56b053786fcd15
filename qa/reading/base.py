"""The reader: marks answer spans inside retrieved passages.

Every implementation has one method, ``read(question, passages)``, that returns
candidate answers (unmerged, any order) with scores in [0, 1], and may carry
a learned ``threshold`` (None: the pipeline's default). The pipeline merges
near-duplicates, sorts them and applies the no-answer threshold.

The product's reader is an extractive-QA transformer run by
``qa.reading.transformer.TransformerReader``: by default the shipped span model
(``qa/reading/span_model``, trained by ``training/train_reader.py``, its scores
calibrated by ``training/calibrate_reader.py``), or any local Hugging Face
checkpoint named by ``Settings.reader_model``. It runs on
``Settings.reader_backend`` (ONNX Runtime int8 by default).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

from qa import models
from qa.schema import Answer, Passage

SPAN_MODEL_PATH = Path(__file__).parent / "span_model"


class Reader(Protocol):
    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        """Answers found in ``passages``; an empty list when none is likely."""
        ...


def load_reader(settings) -> Reader:
    """The reader of ``settings.reader_model`` (default: the shipped span model), loaded once per process."""
    model_path = str(settings.reader_model or SPAN_MODEL_PATH)
    if not (Path(model_path) / "config.json").is_file():
        raise ValueError(f"reader model {model_path}: not a Hugging Face checkpoint folder (no config.json)")
    key = (model_path, settings.reader_backend, settings.onnx_cache_dir)
    return models.shared("reader", key, lambda: _load(*key))


def _load(model_path: str, backend: str, onnx_cache_dir: Path | None) -> Reader:
    from qa.reading.transformer import TransformerReader

    return TransformerReader(model_path, backend=backend, onnx_cache_dir=onnx_cache_dir)
