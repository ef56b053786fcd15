"""The FAISS half of a local generation: which index type, building it, and exact scoring of a few.

Exact inner product (flat) below a threshold of passages, HNSW from there on. Updates work
on a flat copy (HNSW cannot remove vectors); the HNSW graph is built from it at publish time.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

# A filtered dense search over at most this many passages scores their vectors directly (exact)
EXACT_FILTER_MAX = 20_000


@dataclass(frozen=True)
class VectorIndexConfig:
    """Which FAISS index a published generation gets (see ``choose_index_type``)."""

    index_type: str = "auto"  # auto | flat | hnsw
    hnsw_threshold: int = 20_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 100
    hnsw_ef_search: int = 512
    threads: int = 2

    @classmethod
    def from_settings(cls, settings: Any) -> "VectorIndexConfig":
        return cls(settings.index_type, settings.hnsw_threshold, settings.hnsw_m, settings.hnsw_ef_construction,
                   settings.hnsw_ef_search, settings.embedding_threads)


def choose_index_type(passages: int, config: VectorIndexConfig) -> str:
    """'flat' or 'hnsw' for a collection of ``passages`` vectors."""
    if config.index_type != "auto":
        return config.index_type
    return "hnsw" if passages >= config.hnsw_threshold else "flat"


def flat_view(index: faiss.Index) -> np.ndarray:
    """The (ntotal, d) float32 vectors stored in a flat or HNSW-flat index, without copying."""
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSW):
        inner = faiss.downcast_index(inner.storage)
    if not isinstance(inner, faiss.IndexFlat):
        raise TypeError(f"cannot read vectors from a {type(inner).__name__}")
    if inner.ntotal == 0:
        return np.zeros((0, inner.d), dtype=np.float32)
    return faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d).reshape(inner.ntotal, inner.d)


def to_flat(vectors: faiss.Index) -> faiss.IndexIDMap2:
    """An exact IndexIDMap2(IndexFlatIP) with the same ids and vectors (for updating)."""
    idmap = faiss.downcast_index(vectors)
    inner = faiss.downcast_index(idmap.index)
    if isinstance(inner, faiss.IndexFlat):
        return faiss.clone_index(idmap)
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(idmap.d))
    if idmap.ntotal:
        flat.add_with_ids(np.array(flat_view(inner)), faiss.vector_to_array(idmap.id_map))
    return flat


def build_vector_index(flat: faiss.Index, index_type: str, config: VectorIndexConfig) -> faiss.Index:
    """The index to publish, built from the exact one."""
    if index_type == "flat":
        return flat
    if index_type != "hnsw":
        raise ValueError(f"unknown index type {index_type!r}; use 'auto', 'flat' or 'hnsw'")
    idmap = faiss.downcast_index(flat)
    hnsw = faiss.IndexHNSWFlat(idmap.d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = config.hnsw_ef_construction
    hnsw.hnsw.efSearch = config.hnsw_ef_search
    out = faiss.IndexIDMap2(hnsw)
    if idmap.ntotal:
        faiss.omp_set_num_threads(config.threads)
        out.add_with_ids(np.array(flat_view(idmap.index)), faiss.vector_to_array(idmap.id_map))
    return out


def exact_among(vectors: faiss.Index, sorted_ids: np.ndarray, rows: np.ndarray, query: np.ndarray, k: int,
                allowed: np.ndarray) -> list[tuple[int, float]]:
    """Exact top ``k`` among ``allowed`` pks, scoring their stored vectors directly.

    ``sorted_ids`` are the index's ids in order and ``rows`` their rows in its storage.
    """
    if not len(sorted_ids):
        return []
    allowed = np.unique(np.asarray(allowed, dtype=np.int64))
    pos = np.minimum(np.searchsorted(sorted_ids, allowed), len(sorted_ids) - 1)
    where = pos[sorted_ids[pos] == allowed]  # allowed pks that have a vector
    if not len(where):
        return []
    storage = flat_view(faiss.downcast_index(vectors).index)
    scores = storage[rows[where]] @ query.reshape(-1).astype(np.float32)
    pks = sorted_ids[where]
    top = np.argsort(-scores, kind="stable")[:k]
    return [(int(pks[i]), float(scores[i])) for i in top]
