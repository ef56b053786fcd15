"""Embedding backends: the int8 ONNX path is exported once, cached, and close to PyTorch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.ingest.loaders import load_path
from qa.embedding.base import resolve_model_path
from qa.embedding.loading import embedder_for, load_embedder
from qa.ingest.passages import split_document
from qa.settings import DEFAULT_EMBEDDING_MODEL, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def passages() -> list[str]:
    texts = [p.text for doc in load_path(ROOT / "documents") for p in split_document(doc)]
    assert len(texts) >= 50
    return texts


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_int8_vectors_are_close_to_the_pytorch_model(passages, cache_dir):
    torch_vectors = load_embedder(DEFAULT_EMBEDDING_MODEL, 64, "torch", 2).encode(passages)
    int8 = load_embedder(DEFAULT_EMBEDDING_MODEL, 16, "onnx-int8", 2, cache_dir)
    assert int8.backend == "onnx-int8" and int8.dimension == torch_vectors.shape[1]
    vectors = int8.encode(passages)
    assert vectors.dtype == np.float32 and vectors.shape == torch_vectors.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosine = (vectors * torch_vectors).sum(1)
    assert cosine.mean() > 0.98 and cosine.min() > 0.94
    # nearest neighbours mostly agree: each passage's closest other passage is the same
    def nearest(v):
        sims = v @ v.T
        np.fill_diagonal(sims, -1)
        return sims.argmax(1)
    assert (nearest(vectors) == nearest(torch_vectors)).mean() >= 0.8  # the rest are near-ties


def test_fp32_onnx_matches_pytorch(passages, cache_dir):
    torch_vectors = load_embedder(DEFAULT_EMBEDDING_MODEL, 64, "torch", 2).encode(passages[:20])
    onnx = load_embedder(DEFAULT_EMBEDDING_MODEL, 8, "onnx", 2, cache_dir).encode(passages[:20])
    assert (onnx * torch_vectors).sum(1).min() > 0.9999


def test_the_export_is_cached_and_reused(cache_dir):
    from qa.onnx import ensure_onnx_model

    path = ensure_onnx_model(resolve_model_path(DEFAULT_EMBEDDING_MODEL), "int8", cache_dir)
    assert path.exists() and path.parent.parent == cache_dir
    mtime = path.stat().st_mtime_ns
    again = ensure_onnx_model(resolve_model_path(DEFAULT_EMBEDDING_MODEL), "int8", cache_dir)
    assert again == path and path.stat().st_mtime_ns == mtime
    assert not list(path.parent.glob(".build-*"))  # no temporary leftovers


def test_batches_sorted_by_length_keep_the_input_order(passages, cache_dir):
    embedder = load_embedder(DEFAULT_EMBEDDING_MODEL, 4, "onnx-int8", 2, cache_dir)
    texts = passages[:9]
    together = embedder.encode(texts)
    alone = np.vstack([embedder.encode([t]) for t in texts])
    # dynamic int8 scales activations per batch, so a vector depends slightly on its batch
    # mates; each row must still be its own text's vector, in the input order
    cosine = together @ alone.T
    assert (cosine.argmax(1) == np.arange(len(texts))).all() and np.diag(cosine).min() > 0.97
    assert embedder.encode([]).shape == (0, embedder.dimension)


def test_backend_is_chosen_by_settings(cache_dir, monkeypatch):
    assert Settings().embedding_backend == "onnx-int8"
    monkeypatch.setenv("QA_EMBEDDING_BACKEND", "torch")
    assert Settings().embedding_backend == "torch"
    assert embedder_for(Settings()).backend == "torch"
    assert embedder_for(Settings(embedding_backend="onnx-int8", onnx_cache_dir=cache_dir)).backend == "onnx-int8"
    with pytest.raises(ValueError):
        load_embedder(DEFAULT_EMBEDDING_MODEL, 8, "tensorflow")
