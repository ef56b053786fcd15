"""Which store backend serves an index (from ``Settings.store``), and how to notice that it changed.

``Settings.store`` (``--store``, ``QA_STORE``) is one of:

* a folder path, or unset (then ``Settings.index_dir``): the local SQLite + FAISS store;
* ``milvus-lite:PATH``: a Milvus Lite file, embedded in this process;
* ``http://HOST:PORT`` or ``https://...``: a Milvus server or cluster (``QA_MILVUS_TOKEN``).

The pipeline, retrieval and indexing only see ``Store`` and ``StoreUpdate``.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from qa.settings import Settings
from qa.stores.base import IndexUnavailable, Store, StoreUpdate
from qa.stores.local import LocalStore, Update, VectorIndexConfig, current_generation
from qa.stores.milvus.client import MilvusLocation

LITE = "milvus-lite:"
VERSION_CHECK_SECONDS = 1.0  # how long a server trusts Milvus' revision before asking again


@dataclass(frozen=True)
class Where:
    """A parsed store location: a local folder or a Milvus location."""

    folder: Path | None = None
    milvus: MilvusLocation | None = None

    def __str__(self) -> str:
        return str(self.folder) if self.folder is not None else self.milvus.shown  # type: ignore[union-attr]


def where(settings: Settings) -> Where:
    """Where ``settings`` say the index is; ``ValueError`` names what is wrong with the location."""
    value = (settings.store or "").strip()
    if not value:
        return Where(folder=settings.index_dir)
    if value.startswith(("http://", "https://")):
        return Where(milvus=_milvus(settings, value))
    if value.startswith(LITE):
        path = value[len(LITE):]
        if not path:
            raise ValueError(f"the store {value!r} names no file: write milvus-lite:/path/to/file.db")
        path = str(Path(path).expanduser().resolve())
        if not path.endswith(".db"):
            raise ValueError(f"the Milvus Lite file {path!r} must end in .db (Milvus Lite's rule)")
        return Where(milvus=_milvus(settings, path))
    if "://" in value or value.startswith("milvus"):
        raise ValueError(f"unknown store {value!r}: use a folder, milvus-lite:PATH or http(s)://HOST:PORT")
    return Where(folder=Path(value))


def _milvus(settings: Settings, uri: str) -> MilvusLocation:
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    return MilvusLocation(uri=uri, collection=settings.milvus_collection, token=token,
                          timeout=settings.milvus_timeout)


_VERSIONS: dict[MilvusLocation, tuple[float, str]] = {}
_VERSIONS_LOCK = threading.Lock()


def store_version(settings: Settings) -> str:
    """A name that changes whenever new contents are published (readers reopen on a change).

    For Milvus it is the revision property, asked at most once per ``VERSION_CHECK_SECONDS``
    (a failure is never cached: an unreachable server is noticed on the next request).
    """
    place = where(settings)
    if place.folder is not None:
        generation = current_generation(place.folder)
        if generation is None:
            raise IndexUnavailable(f"no index in {place.folder}; build it with `qa index`")
        return generation
    from qa.stores.milvus import milvus_version

    location = place.milvus
    assert location is not None
    now = time.monotonic()
    known = _VERSIONS.get(location)
    if known is not None and now - known[0] < VERSION_CHECK_SECONDS:
        return known[1]
    try:
        version = milvus_version(location)
    except IndexUnavailable:
        _VERSIONS.pop(location, None)
        raise
    with _VERSIONS_LOCK:
        _VERSIONS[location] = (now, version)
    return version


def open_store(settings: Settings) -> Store:
    """The index in use, open for reading; ``IndexUnavailable`` says why when it cannot be used."""
    place = where(settings)
    if place.folder is not None:
        return LocalStore.open(place.folder, settings.embedding_model)
    from qa.stores.milvus import MilvusStore

    return MilvusStore.open(place.milvus, settings.embedding_model)  # type: ignore[arg-type]


def open_update(settings: Settings, dimension: int, embedding_backend: str, rebuild: bool = False) -> StoreUpdate:
    """An update of the index (a new local generation, or writes to Milvus), for ``qa index``."""
    place = where(settings)
    if place.folder is not None:
        return Update(place.folder, settings.embedding_model, dimension, rebuild=rebuild,
                      vector_index=VectorIndexConfig.from_settings(settings), embedding_backend=embedding_backend)
    from qa.stores.milvus import MilvusUpdate

    return MilvusUpdate(place.milvus, settings.embedding_model, dimension, rebuild=rebuild,  # type: ignore[arg-type]
                        embedding_backend=embedding_backend, hnsw_m=settings.hnsw_m,
                        hnsw_ef_construction=settings.hnsw_ef_construction, hnsw_ef_search=settings.hnsw_ef_search)
