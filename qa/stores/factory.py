"""Which store backend serves an index, and how to notice that it changed.

Today there is one backend, the local SQLite + FAISS folder (``Settings.index_dir``).
A second backend plugs in here: the pipeline, retrieval and indexing only see ``Store``.
"""
from __future__ import annotations

from qa.settings import Settings
from qa.stores.base import IndexUnavailable, Store, StoreUpdate
from qa.stores.local import LocalStore, Update, VectorIndexConfig, current_generation


def store_version(settings: Settings) -> str:
    """A name that changes whenever new contents are published (readers reopen on a change)."""
    generation = current_generation(settings.index_dir)
    if generation is None:
        raise IndexUnavailable(f"no index in {settings.index_dir}; build it with `qa index`")
    return generation


def open_store(settings: Settings) -> Store:
    """The index in use, open for reading; ``IndexUnavailable`` says why when it cannot be used."""
    return LocalStore.open(settings.index_dir, settings.embedding_model)


def open_update(settings: Settings, dimension: int, embedding_backend: str, rebuild: bool = False) -> StoreUpdate:
    """An update of the index (a new generation of the local store), for ``qa index``."""
    return Update(settings.index_dir, settings.embedding_model, dimension, rebuild=rebuild,
                  vector_index=VectorIndexConfig.from_settings(settings), embedding_backend=embedding_backend)
