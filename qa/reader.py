"""The reader: marks answer spans inside retrieved passages.

Every implementation has one method, ``read(question, passages)``, that returns
candidate answers (unmerged, any order) with scores in [0, 1], and may carry
a learned ``threshold`` (None: the pipeline's default). The pipeline merges
near-duplicates, sorts them and applies the no-answer threshold.

The product's reader is an extractive-QA transformer run by
``qa.hf_reader.TransformerReader``: by default the shipped span model
(``qa/data/span_model``, trained by ``training/train_reader.py``, its scores
calibrated by ``training/calibrate_reader.py``), or any local Hugging Face
checkpoint named by ``Settings.reader_model``. It runs on
``Settings.reader_backend`` (ONNX Runtime int8 by default).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence

from qa.schema import Answer, Passage

SPAN_MODEL_PATH = Path(__file__).parent / "data" / "span_model"


class Reader(Protocol):
    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        """Answers found in ``passages``; an empty list when none is likely."""
        ...


def load_reader(settings) -> Reader:
    """The reader of ``settings.reader_model`` (default: the shipped span model), loaded once per process."""
    return _cached_reader(str(settings.reader_model or SPAN_MODEL_PATH), settings.reader_backend,
                          settings.onnx_cache_dir)


@lru_cache(maxsize=2)
def _cached_reader(model_path: str, backend: str, onnx_cache_dir: Path | None) -> Reader:
    from qa.hf_reader import TransformerReader

    if not (Path(model_path) / "config.json").is_file():
        raise ValueError(f"reader model {model_path}: not a Hugging Face checkpoint folder (no config.json)")
    return TransformerReader(model_path, backend=backend, onnx_cache_dir=onnx_cache_dir)
