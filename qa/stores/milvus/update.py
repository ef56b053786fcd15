"""Updating the index in Milvus: create the collections, redo what a killed run left, publish a revision.

Unlike the local store, Milvus has no generations: rows are upserted in place and searches see
them as they are written (each document whole, see ``MilvusStore.flush``). ``publish`` flushes
the segments, records the counts and the metadata keys, and bumps ``qa.revision`` so that
servers reload what they cache (film titles, term frequencies). An update that fails or is
killed keeps what it wrote; the next one wipes the documents left half-written and converges
to the same contents. ``--rebuild`` with another embedding model drops both collections first.
"""
from __future__ import annotations

import json
import time
from typing import Any

from qa.stores.base import IndexUnavailable
from qa.stores.milvus.client import MilvusLocation, call
from qa.stores.milvus.collections import PREFIX, SCHEMA_VERSION, create_collections
from qa.stores.milvus.store import MilvusStore, check_model, manifest_of


class MilvusUpdate:
    """``with update as store:`` writes to Milvus; ``publish()`` makes a new revision current."""

    def __init__(self, location: MilvusLocation, embedding_model: str, dimension: int, rebuild: bool = False,
                 embedding_backend: str = "", hnsw_m: int = 32, hnsw_ef_construction: int = 100,
                 hnsw_ef_search: int = 512):
        self.location = location
        self.embedding_model = embedding_model
        self.dimension = dimension
        self.rebuild = rebuild
        self.embedding_backend = embedding_backend
        self.hnsw = (hnsw_m, hnsw_ef_construction, hnsw_ef_search)
        self.previous: str | None = None
        self.upgraded_from: int | None = None
        self.publish_seconds: dict[str, float] = {}
        self.store: MilvusStore | None = None
        self._properties: dict[str, str] = {}

    def _existing(self, client: Any) -> dict[str, str] | None:
        if not client.has_collection(self.location.passages):
            return None
        return dict(client.describe_collection(self.location.passages).get("properties") or {})

    def __enter__(self) -> MilvusStore:
        location = self.location
        properties = call(location, self._existing)
        if properties is not None and PREFIX + "embedding_model" in properties:
            manifest = manifest_of(properties)
            other = (manifest.embedding_model != self.embedding_model or manifest.dimension != self.dimension
                     or manifest.schema_version != SCHEMA_VERSION)
            if other and self.rebuild:
                call(location, lambda c: (c.drop_collection(location.passages), c.drop_collection(location.documents)))
                properties = None
            elif other:
                check_model(manifest, self.embedding_model, location)
                raise IndexUnavailable(f"the index in Milvus at {location.shown} was built with dimension "
                                       f"{manifest.dimension}; rebuild it with `qa index --rebuild --store "
                                       f"{location.shown}`")
        m, ef_construction, ef_search = self.hnsw
        call(location, lambda c: create_collections(c, location.passages, location.documents, self.dimension,
                                                    m, ef_construction))
        if properties is None or PREFIX + "embedding_model" not in properties:
            properties = {PREFIX + "schema_version": str(SCHEMA_VERSION), PREFIX + "embedding_model": self.embedding_model,
                          PREFIX + "dimension": str(self.dimension), PREFIX + "embedding_backend": self.embedding_backend,
                          PREFIX + "hnsw_ef_search": str(ef_search), PREFIX + "created_at": str(time.time())}
            call(location, lambda c: c.alter_collection_properties(location.passages, properties=properties))
        self._properties = properties
        self.previous = properties.get(PREFIX + "revision")
        self.store = MilvusStore(location, manifest_of(properties), read_only=False)
        self.store.load()
        left = self.store.pending()
        if left:  # documents a killed run was writing: wiped, and added again by the indexer if still there
            self.store.wipe(sorted(left))
            self.store.set_pending(set())
        return self.store

    def publish(self) -> str:
        assert self.store is not None, "publish() inside the with block"
        store, location = self.store, self.location
        started = time.perf_counter()
        store.flush()
        call(location, lambda c: (c.flush(location.passages), c.flush(location.documents)))
        self.publish_seconds["flush"] = time.perf_counter() - started
        previous_keys = set(json.loads(self._properties.get(PREFIX + "metadata_keys", "[]")))
        if store.removed_any or self.previous is None:
            keys = store.metadata_keys()  # recounted: a removed document may have held the last use of a key
        else:
            keys = previous_keys | store.added_metadata_keys
        number = int((self.previous or "rev-0").rsplit("-", 1)[-1]) + 1
        revision = f"rev-{number:06d}"
        properties = {PREFIX + "documents": str(store.count_documents()), PREFIX + "passages": str(store.count_passages()),
                      PREFIX + "metadata_keys": json.dumps(sorted(keys)), PREFIX + "revision": revision,
                      PREFIX + "published_at": str(time.time())}
        call(location, lambda c: c.alter_collection_properties(location.passages, properties=properties))
        self.publish_seconds["publish"] = time.perf_counter() - started
        return revision

    def __exit__(self, *exc: Any) -> None:
        # Nothing to discard: what was written stays (each document whole) and the next run converges.
        self.store = None

