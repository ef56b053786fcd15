"""Which embedder a process uses: the backend and model ``Settings`` name, loaded once (``qa.models``)."""
from __future__ import annotations

from pathlib import Path

from qa import models
from qa.embedding.base import DEFAULT_BACKEND, DEFAULT_BATCH_SIZE, Embedder, resolve_model_path
from qa.settings import DEFAULT_EMBEDDING_MODEL, Settings

BACKENDS = ("onnx-int8", "onnx", "torch")


def load_embedder(model_name: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = DEFAULT_BATCH_SIZE,
                  backend: str = DEFAULT_BACKEND, threads: int = 2, cache_dir: Path | None = None) -> Embedder:
    """The process-wide embedder for ``model_name`` and ``backend`` (loaded on first call)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; use 'onnx-int8', 'onnx' or 'torch'")
    return models.shared("embedder", (model_name, batch_size, backend, threads, cache_dir),
                         lambda: _load(model_name, batch_size, backend, threads, cache_dir))


def embedder_for(settings: Settings) -> Embedder:
    """The process-wide embedder configured by ``settings``."""
    return load_embedder(settings.embedding_model, settings.embedding_batch_size, settings.embedding_backend,
                         settings.embedding_threads, settings.onnx_cache_dir)


def _load(model_name: str, batch_size: int, backend: str, threads: int, cache_dir: Path | None) -> Embedder:
    if backend == "torch":
        from qa.embedding.torch_embedder import TorchEmbedder

        return TorchEmbedder(model_name, batch_size, threads)
    from qa.embedding.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(model_name, resolve_model_path(model_name), "int8" if backend == "onnx-int8" else "fp32",
                        batch_size, threads, cache_dir)
