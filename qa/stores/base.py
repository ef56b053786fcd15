"""The store interface: what indexing, retrieval and the pipeline may ask of any backend.

A store holds documents (whole reviews), their passages, a vector per passage and a
keyword index over both. Passages and documents are addressed by integer primary keys
(``pk``) inside the store and by their string ids outside it. Every search returns
``(pk, score)`` pairs, best first; scores are comparable within one list only (fusion
normalises them), so two backends may differ in raw scores but not in order.

Every search takes a ``Scope``: the request's filters and, optionally, the documents to
search among. Each backend applies it inside the search (an SQL condition and a FAISS ID
selector locally, a filter expression in Milvus), never to the results afterwards.

Two backends: the local SQLite + FAISS folder (``qa.stores.local``) and Milvus
(``qa.stores.milvus``: a Milvus Lite file, a Lite server or a cluster). ``open_store`` in
``qa.stores.factory`` picks one from ``Settings.store``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
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


class StoreUnreachable(IndexUnavailable):
    """The database holding the index (a Milvus server) cannot be reached, or failed the call; it may come back."""


class IndexLocked(RuntimeError):
    """Another process is updating the index."""


@dataclass(frozen=True)
class Scope:
    """What a search may return: passages (or documents) matching every filter, among ``documents`` if given.

    ``filters``: ``FILTER_FIELDS`` or metadata keys -> a value or a list of which any may match
    (film, title and metadata compare case-insensitively); ``documents``: document pks.
    """

    filters: Filters = field(default_factory=dict)
    documents: tuple[int, ...] | None = None

    def with_filter(self, key: str, value: "str | Sequence[str]") -> "Scope":
        return Scope({**self.filters, key: value}, self.documents)

    def among(self, documents: Sequence[int]) -> "Scope":
        return Scope(self.filters, tuple(int(d) for d in documents))

    @property
    def key(self) -> str:
        """A string naming this scope (for caches)."""
        return json.dumps([sorted((k, v if isinstance(v, str) else list(v)) for k, v in self.filters.items()),
                           self.documents])


EVERYTHING = Scope()


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
    def count_passages(self, scope: Scope = EVERYTHING) -> int: ...
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
    def owners(self, passage_pks: Sequence[int]) -> dict[int, tuple[int, str]]:
        """passage pk -> (pk of its document, its film)."""
        ...
    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, kept for as long as this view of the index lives when it is read-only."""
        ...

    # ----- searches, each within a scope
    def dense_search(self, query: np.ndarray, k: int, scope: Scope = EVERYTHING) -> list[Hit]:
        """(passage pk, cosine similarity) of the ``k`` nearest passages."""
        ...
    def keyword_search(self, terms: Sequence[str], k: int, scope: Scope = EVERYTHING) -> list[Hit]:
        """BM25 over passages for any of ``terms`` (already analysed by ``qa.retrieval.query``)."""
        ...
    def document_search(self, terms: Sequence[str], k: int, scope: Scope = EVERYTHING) -> list[Hit]:
        """BM25 over whole documents (document pks)."""
        ...
    def passages_with(self, term: str) -> int:
        """How many passages contain ``term`` (after the backend's stemming)."""
        ...
    def documents_with(self, term: str) -> int: ...

    # ----- about the backend
    def describe(self) -> dict[str, Any]:
        """What ``qa info`` reports about where and how this index is stored."""
        ...

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
