"""Updating a local index: a new generation written beside the one in use, then published atomically.

An update never touches the generation in use: it copies it to a temporary folder, changes
the copy, writes everything to disk, renames the folder to its final name and only then
replaces ``CURRENT``. A crash or kill at any point leaves the previous generation intact and
in use; leftovers of an interrupted update are removed by the next one.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
from dataclasses import asdict
from pathlib import Path

import faiss

from qa.stores.base import IndexLocked, IndexUnavailable, Manifest
from qa.stores.local.manifest import CURRENT, GENERATION, SCHEMA_VERSION, current_generation
from qa.stores.local.sqlite import SCHEMA, connect, create, upgrade_schema
from qa.stores.local.store import LocalStore
from qa.stores.local.vectors import VectorIndexConfig, build_vector_index, choose_index_type, to_flat


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Update:
    """A new generation being written. Use as a context manager; ``publish()`` makes it current.

    Leaving the block without publishing (an error, Ctrl-C) discards the new
    generation and leaves the one in use untouched. A generation of an older schema
    (``UPGRADABLE``) is upgraded in the copy (``upgraded_from`` says from which version), so
    publishing the update also upgrades the index.

    ``keep_vectors`` publishes the previous generation's vectors as they are, without an exact
    copy or a rebuilt HNSW graph: only for updates that add and remove nothing (``upgrade``).
    """

    def __init__(self, index_dir: Path, embedding_model: str, dimension: int, rebuild: bool = False,
                 vector_index: VectorIndexConfig | None = None, embedding_backend: str = "",
                 keep_vectors: bool = False):
        self.index_dir = index_dir
        self.embedding_model = embedding_model
        self.dimension = dimension
        self.rebuild = rebuild
        self.vector_index = vector_index or VectorIndexConfig()
        self.embedding_backend = embedding_backend
        self.keep_vectors = keep_vectors
        self.publish_seconds: dict[str, float] = {}
        self.store: LocalStore | None = None
        self.previous: str | None = None
        self.upgraded_from: int | None = None
        self._previous_manifest: Manifest | None = None
        self._lock_file = None
        self._tmp: Path | None = None

    def __enter__(self) -> LocalStore:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.index_dir / ".lock", "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise IndexLocked(f"another `qa index` is updating {self.index_dir}; wait for it to finish")
        for leftover in self.index_dir.glob("gen-*.tmp*"):
            shutil.rmtree(leftover, ignore_errors=True)  # from an interrupted update
        self.previous = current_generation(self.index_dir)
        self._tmp = self.index_dir / f"{self._next_name()}.tmp-{os.getpid()}"
        self._tmp.mkdir()
        manifest = Manifest(SCHEMA_VERSION, self.embedding_model, self.dimension, created_at=time.time(),
                            embedding_backend=self.embedding_backend)
        db = self._tmp / "store.sqlite"
        if self.previous and not self.rebuild:
            old = LocalStore.open(self.index_dir, self.embedding_model, upgradable=True, mapped=False)
            try:
                if old.manifest.dimension != self.dimension:
                    raise IndexUnavailable("the embedding dimension changed; rebuild with `qa index --rebuild`")
                dest = sqlite3.connect(db)
                with old._lock:
                    old.conn.backup(dest)
                dest.close()
                # updates need remove_ids: they work on an exact copy
                vectors = old.vectors if self.keep_vectors else to_flat(old.vectors)
                self._previous_manifest = old.manifest
            finally:
                old.close()
        else:
            vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        conn = connect(db, read_only=False) if db.exists() else create(db)
        conn.executescript(SCHEMA)
        if self._previous_manifest is not None and self._previous_manifest.schema_version != SCHEMA_VERSION:
            self.upgraded_from = self._previous_manifest.schema_version
            upgrade_schema(conn, self.upgraded_from)
        self.store = LocalStore(self._tmp, manifest, conn, vectors)
        return self.store

    def _next_name(self) -> str:
        numbers = [int(m.group(1)) for p in self.index_dir.iterdir() if (m := GENERATION.match(p.name))]
        return f"gen-{max(numbers, default=0) + 1:06d}"

    def publish(self) -> str:
        """Write the new generation to disk and switch ``CURRENT`` to it atomically."""
        assert self.store is not None and self._tmp is not None
        store = self.store
        store.conn.commit()
        store.manifest.documents = store.count_documents()
        store.manifest.passages = store.count_passages()
        store.conn.close()
        started = time.perf_counter()
        vectors = self._vectors_to_publish(store)
        self.publish_seconds["build_vector_index"] = time.perf_counter() - started
        faiss.write_index(vectors, str(self._tmp / "vectors.faiss"))
        (self._tmp / "manifest.json").write_text(json.dumps(asdict(store.manifest), indent=2), encoding="utf-8")
        for f in self._tmp.iterdir():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())
        final = self.index_dir / self._tmp.name.split(".tmp")[0]
        os.rename(self._tmp, final)
        pointer = self.index_dir / f"{CURRENT}.tmp"
        pointer.write_text(final.name + "\n", encoding="utf-8")
        with open(pointer, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(pointer, self.index_dir / CURRENT)
        fsync_dir(self.index_dir)
        self._tmp = None
        self._remove_old(keep={final.name, self.previous})
        return final.name

    def _vectors_to_publish(self, store: LocalStore) -> faiss.Index:
        """The vector index to write, its type and search depth recorded in the manifest."""
        previous = self._previous_manifest
        if self.keep_vectors and previous is not None:
            store.manifest.index_type, store.manifest.hnsw_ef_search = previous.index_type, previous.hnsw_ef_search
            return store.vectors
        index_type = choose_index_type(store.manifest.passages, self.vector_index)
        store.manifest.index_type = index_type
        store.manifest.hnsw_ef_search = self.vector_index.hnsw_ef_search if index_type == "hnsw" else 0
        return build_vector_index(store.vectors, index_type, self.vector_index)

    def _remove_old(self, keep: set[str | None]) -> None:
        """Generations older than the previous one are deleted (open readers keep working on Linux)."""
        for path in self.index_dir.iterdir():
            if GENERATION.match(path.name) and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            if self.store is not None:
                try:
                    self.store.conn.close()
                except sqlite3.Error:
                    pass
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()


def upgrade(index_dir: Path) -> str | None:
    """Bring the index in use to ``SCHEMA_VERSION``; the new generation's name, or None if already there.

    The upgrade is an ordinary update that adds and removes nothing: the generation is copied,
    the copy upgraded and published atomically, and the vectors are kept as they are (no
    re-embedding, no HNSW rebuild). The upgraded generation is the previous one until the next
    update. Readers never upgrade on their own: they may not be allowed to write the index, and
    the index may be shared.
    """
    name = current_generation(index_dir)
    if name is None:
        raise IndexUnavailable(f"no index in {index_dir}; build it with `qa index`")
    manifest = Manifest.load(index_dir / name / "manifest.json")
    if manifest.schema_version == SCHEMA_VERSION:
        return None
    update = Update(index_dir, manifest.embedding_model, manifest.dimension,
                    embedding_backend=manifest.embedding_backend, keep_vectors=True)
    with update:
        return update.publish()
