"""The store interface: what indexing, retrieval and the pipeline may ask of any backend.

A store holds documents (whole reviews), their passages, a vector per passage and a
keyword index over both. Passages and documents are addressed by integer primary keys
(``pk``) inside the store and by their string ids outside it. Every search returns
``(pk, score)`` pairs, best first; scores are comparable within one list only (fusion
normalises them), so two backends may differ in raw scores but not in order.

The local backend (SQLite + FAISS, ``qa.stores.local``) is the one implementation today;
``open_store`` in ``qa.stores.factory`` picks the backend.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from qa.schema import Document, Passage

Filters = Mapping[str, "str | Sequence[str]"]
Hit = tuple[int, float]
FILTER_FIELDS = ("document_id", "film", "title")  # filterable besides any metadata key
T = TypeVar("T")


class IndexUnavailable(RuntimeError):
    """No usable index: missing, built with another model or schema, or damaged."""


class IndexLocked(RuntimeError):
    """Another process is updating the index."""


@dataclass
class Manifest:
    """What an index holds and how it was built (``manifest.json`` of a local generation)."""

    schema_version: int
    embedding_model: str
    dimension: int
    documents: int = 0
    passages: int = 0
    created_at: float = 0.0
    index_type: str = "flat"
    hnsw_ef_search: int = 0
    embedding_backend: str = ""

    @classmethod
    def load(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise IndexUnavailable(f"the index manifest {path} is unreadable ({err}); "
                                   "rebuild the index with `qa index --rebuild`") from err


class Store(Protocol):
    """One consistent view of the index (a published generation, or one being written)."""

    manifest: Manifest
    read_only: bool

    # ----- what it holds
    def count_documents(self) -> int: ...
    def count_passages(self) -> int: ...
    def films(self) -> list[tuple[str, int]]:
        """Every film title with its number of reviews, by title."""
        ...
    def metadata_keys(self) -> set[str]: ...
    def document(self, document_id: str) -> Document | None: ...
    def document_hashes(self) -> dict[str, tuple[str, str, str]]:
        """document id -> (content hash, root it was indexed from, source file)."""
        ...
    def passages(self, pks: Sequence[int]) -> dict[int, Passage]: ...
    def passages_of(self, document_id: str) -> list[Passage]: ...
    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept for as long as this view of the index lives when it is read-only."""
        ...

    # ----- filters and relations
    def filter_passage_pks(self, filters: Filters) -> np.ndarray: ...
    def filter_document_pks(self, filters: Filters) -> np.ndarray: ...
    def document_pks(self, passage_pks: Sequence[int]) -> dict[int, int]: ...
    def passage_pks_of_documents(self, document_pks: Sequence[int]) -> np.ndarray: ...

    # ----- searches (``allowed``: pks to search among; None: all)
    def dense_search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[Hit]: ...
    def keyword_search(self, terms: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """BM25 over passages for any of ``terms`` (already analysed by ``qa.retrieval.query``)."""
        ...
    def document_search(self, terms: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[Hit]:
        """BM25 over whole documents (document pks)."""
        ...
    def passages_with(self, term: str) -> int:
        """How many passages contain ``term`` (after the backend's stemming)."""
        ...
    def documents_with(self, term: str) -> int: ...

    # ----- writing (a store opened for an update)
    def add_document(self, document: Document, root: str, content_hash: str,
                     passages: Sequence[Passage], vectors: np.ndarray) -> None: ...
    def remove_document(self, document_id: str) -> None: ...
    def close(self) -> None: ...


class StoreUpdate(Protocol):
    """A change to the index: ``with update as store:`` writes, ``publish()`` makes it visible at once.

    Leaving the block without publishing discards every change; readers never see half an update.
    """

    previous: str | None  # the version in use when the update began (None: a new index)
    upgraded_from: int | None  # the schema version the update upgraded from, if it did
    publish_seconds: dict[str, float]  # time spent in each publishing step (for the report)

    def __enter__(self) -> Store: ...
    def __exit__(self, *exc: Any) -> None: ...
    def publish(self) -> str:
        """Make the changes current; the new version's name."""
        ...
