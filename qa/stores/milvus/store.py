"""The index in Milvus, for reading and (buffered) writing: the ``Store`` interface over two collections.

Searches push the scope into Milvus as a filter expression (``scope_expression``); dense
search uses the HNSW index, keyword and whole-review search the BM25 sparse vectors. Scores
come back as Milvus computes them (Milvus Lite negates BM25), so they are made positive
here and only their order matters, as with the local store.

Writes are buffered and flushed in batches, in an order that a kill at any point cannot turn
into a wrong index (see ``_flush``): the documents a batch touches are first recorded in the
collection's ``qa.pending`` property, and the next update wipes and redoes them.
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any, Callable, Sequence

import numpy as np

from qa.schema import Document, Passage
from qa.stores.base import EVERYTHING, IndexUnavailable, Manifest, Scope, T
from qa.stores.milvus.client import MilvusLocation, MilvusUnreachable, call
from qa.stores.milvus.collections import (PREFIX, SCHEMA_VERSION, analyse, document_key, filter_values, fold,
                                          in_list, part_key, parts, passage_key, scope_expression, stem)

WRITE_BATCH = 256  # documents per flushed batch
ROWS_PER_CALL = 512  # rows per upsert call
PASSAGE_FIELDS = ["pk", "passage_id", "document_id", "text", "document_start", "film", "title"]
SEARCH_MAX = 16_384  # the most hits Milvus returns for one search
TERM_SAMPLE = 5_000  # rows read (per collection and revision) to estimate how many rows hold a word


def read_properties(location: MilvusLocation) -> dict[str, str]:
    """The manifest properties of the passages collection; ``IndexUnavailable`` when there is none."""
    def describe(client: Any) -> dict[str, str] | None:
        if not client.has_collection(location.passages) or not client.has_collection(location.documents):
            return None
        return dict(client.describe_collection(location.passages).get("properties") or {})
    properties = call(location, describe)
    if properties is None or PREFIX + "revision" not in properties:
        raise IndexUnavailable(f"no index in Milvus at {location.shown} (collection {location.passages}); "
                               f"build it with `qa index --store {location.shown}`")
    return properties


def milvus_version(location: MilvusLocation) -> str:
    """The revision published last (changes with every ``qa index`` that changed something)."""
    return read_properties(location)[PREFIX + "revision"]


def manifest_of(properties: dict[str, str]) -> Manifest:
    def number(key: str) -> int:
        return int(float(properties.get(PREFIX + key, 0) or 0))
    return Manifest(schema_version=number("schema_version"), embedding_model=properties.get(PREFIX + "embedding_model", ""),
                    dimension=number("dimension"), documents=number("documents"), passages=number("passages"),
                    created_at=float(properties.get(PREFIX + "created_at", 0) or 0), index_type="hnsw",
                    hnsw_ef_search=number("hnsw_ef_search"),
                    embedding_backend=properties.get(PREFIX + "embedding_backend", ""))


def check_model(manifest: Manifest, embedding_model: str | None, location: MilvusLocation) -> None:
    rebuild = f"rebuild it with `qa index --rebuild --store {location.shown}`"
    if manifest.schema_version != SCHEMA_VERSION:
        raise IndexUnavailable(f"the index in Milvus at {location.shown} has schema version "
                               f"{manifest.schema_version}; this program reads version {SCHEMA_VERSION}: {rebuild}")
    if embedding_model is not None and manifest.embedding_model != embedding_model:
        raise IndexUnavailable(f"the index in Milvus at {location.shown} was built with the embedding model "
                               f"{manifest.embedding_model!r}, not {embedding_model!r}: {rebuild}, or set "
                               f"QA_EMBEDDING_MODEL={manifest.embedding_model}")


class MilvusStore:
    """Both collections of one index, read-only (a server) or writable (``MilvusUpdate``)."""

    def __init__(self, location: MilvusLocation, manifest: Manifest, read_only: bool = True, revision: str = ""):
        self.location = location
        self.manifest = manifest
        self.read_only = read_only
        self.revision = revision
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._adds: list[tuple[Document, str, str, Sequence[Passage], np.ndarray]] = []
        self._removes: list[str] = []
        self.removed_any = False
        self.added_metadata_keys: set[str] = set()

    @classmethod
    def open(cls, location: MilvusLocation, embedding_model: str | None = None) -> "MilvusStore":
        properties = read_properties(location)
        manifest = manifest_of(properties)
        check_model(manifest, embedding_model, location)
        store = cls(location, manifest, read_only=True, revision=properties[PREFIX + "revision"])
        store.load()
        store._cache["metadata_keys"] = frozenset(json.loads(properties.get(PREFIX + "metadata_keys", "[]")))
        return store

    def load(self) -> None:
        """Load both collections into Milvus' memory (a reopened Milvus Lite file starts released)."""
        def run(client: Any) -> None:
            for name in (self.location.passages, self.location.documents):
                if "Loaded" not in str(client.get_load_state(name).get("state")):
                    client.load_collection(name)
        self._call(run)

    def _call(self, action: Callable[[Any], T]) -> T:
        try:
            return call(self.location, action)
        except MilvusUnreachable as err:
            if "load" not in str(err):
                raise
            self.load()  # a restarted server starts with its collections released
            return call(self.location, action)

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        if not self.read_only:
            return compute()
        if key not in self._cache:
            self._cache.setdefault(key, compute())
        return self._cache[key]

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"backend": "milvus", "store": self.location.shown, "collections":
                [self.location.passages, self.location.documents], "revision": self.revision,
                "vector_index": "hnsw"}

    # ----- reading ---------------------------------------------------------------------------

    def _count(self, collection: str, expression: str) -> int:
        rows = self._call(lambda c: c.query(collection, filter=expression, output_fields=["count(*)"]))
        return int(rows[0]["count(*)"]) if rows else 0

    def _iterate(self, collection: str, expression: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``expression`` (however many), with ``fields``."""
        def run(client: Any) -> list[dict[str, Any]]:
            iterator = client.query_iterator(collection, batch_size=4096, filter=expression, output_fields=fields)
            rows: list[dict[str, Any]] = []
            try:
                while batch := iterator.next():
                    rows.extend(batch)
            finally:
                iterator.close()
            return rows
        return self._call(run)

    def count_documents(self) -> int:
        return self._count(self.location.documents, "part == 0")

    def count_passages(self, scope: Scope = EVERYTHING) -> int:
        return self._count(self.location.passages, scope_expression(scope))

    def films(self) -> list[tuple[str, int]]:
        def compute() -> list[tuple[str, int]]:
            counts: dict[str, int] = {}
            for row in self._iterate(self.location.documents, 'part == 0 and film != ""', ["film"]):
                counts[row["film"]] = counts.get(row["film"], 0) + 1
            return sorted(counts.items())
        return list(self.memo("films", compute))

    def metadata_keys(self) -> set[str]:
        def compute() -> frozenset[str]:
            keys: set[str] = set()
            for row in self._iterate(self.location.documents, "part == 0", ["metadata"]):
                keys.update((row.get("metadata") or {}).keys())
            return frozenset(keys)
        return set(self.memo("metadata_keys", compute))

    def document(self, document_id: str) -> Document | None:
        rows = self._call(lambda c: c.query(self.location.documents, filter=f"document_id == {json.dumps(document_id)}",
                                            output_fields=["part", "text", "film", "title", "metadata", "source"]))
        if not rows:
            return None
        rows.sort(key=lambda r: r["part"])
        first = rows[0]
        return Document(id=document_id, text="".join(r["text"] for r in rows), film=first["film"] or None,
                        title=first["title"] or None, metadata=first["metadata"] or {}, source=first["source"])

    def document_hashes(self) -> dict[str, tuple[str, str, str]]:
        rows = self._iterate(self.location.documents, "part == 0", ["document_id", "hash", "root", "source"])
        return {r["document_id"]: (r["hash"], r["root"], r["source"]) for r in rows}

    def passages(self, pks: Sequence[int]) -> dict[int, Passage]:
        if not len(pks):
            return {}
        rows = self._call(lambda c: c.query(self.location.passages, filter=in_list("pk", pks),
                                            output_fields=PASSAGE_FIELDS))
        return {r["pk"]: Passage(id=r["passage_id"], document_id=r["document_id"], text=r["text"],
                                 document_start=r["document_start"], film=r["film"] or None, title=r["title"] or None)
                for r in rows}

    def passages_of(self, document_id: str) -> list[Passage]:
        rows = self._iterate(self.location.passages, f"document_id == {json.dumps(document_id)}", ["pk", "ordinal"])
        pks = [r["pk"] for r in sorted(rows, key=lambda r: r["ordinal"])]
        by_pk = self.passages(pks)
        return [by_pk[pk] for pk in pks if pk in by_pk]

    def owners(self, passage_pks: Sequence[int]) -> dict[int, tuple[int, str]]:
        if not len(passage_pks):
            return {}
        rows = self._call(lambda c: c.query(self.location.passages, filter=in_list("pk", passage_pks),
                                            output_fields=["pk", "document_pk", "film"]))
        return {r["pk"]: (r["document_pk"], r["film"]) for r in rows}

    # ----- searches --------------------------------------------------------------------------

    def _search(self, collection: str, data: Any, field: str, k: int, expression: str,
                params: dict[str, Any], group: bool = False) -> list[tuple[int, float]]:
        limit = min(k, SEARCH_MAX)
        if limit <= 0:
            return []
        extra = {"group_by_field": "document_pk"} if group else {}
        hits = self._call(lambda c: c.search(collection, data=[data], anns_field=field, limit=limit, filter=expression,
                                             search_params=params, output_fields=["document_pk"] if group else [],
                                             **extra))
        key = (lambda h: h["entity"]["document_pk"]) if group else (lambda h: h["pk"])
        return [(int(key(h)), float(h["distance"])) for h in hits[0]]

    def dense_search(self, query: np.ndarray, k: int, scope: Scope = EVERYTHING) -> list[tuple[int, float]]:
        ef = max(self.manifest.hnsw_ef_search or 64, k)
        return self._search(self.location.passages, np.asarray(query, dtype=np.float32).tolist(), "vector", k,
                            scope_expression(scope), {"metric_type": "COSINE", "params": {"ef": min(ef, 32_768)}})

    def _bm25(self, collection: str, terms: Sequence[str], k: int, scope: Scope, group: bool) -> list[tuple[int, float]]:
        query = " ".join(stem(fold(t)) for t in terms)
        if not query.strip():
            return []
        hits = self._search(collection, query, "sparse", k, scope_expression(scope), {"metric_type": "BM25"}, group)
        # Milvus Lite returns BM25 negated; a server returns it as is. Either way, higher is better.
        return sorted(((pk, abs(score)) for pk, score in hits), key=lambda hit: -hit[1])

    def keyword_search(self, terms: Sequence[str], k: int, scope: Scope = EVERYTHING) -> list[tuple[int, float]]:
        return self._bm25(self.location.passages, terms, k, scope, group=False)

    def document_search(self, terms: Sequence[str], k: int, scope: Scope = EVERYTHING) -> list[tuple[int, float]]:
        """(document pk, BM25 of its best part): a review in several parts is scored by its best one."""
        return self._bm25(self.location.documents, terms, k, scope, group=True)

    def _sample(self, collection: str) -> tuple[Counter[str], float]:
        """Row counts of each word in a uniform sample of about ``TERM_SAMPLE`` rows, and the scale to all.

        Primary keys are hashes, so the rows with a key below a bound are a uniform random sample
        of the collection. Counting a word in Milvus itself (``count(*)`` over ``TEXT_MATCH``)
        reads every row: about a second per word on a Milvus Lite server with 15,000 passages.
        """
        documents = collection == self.location.documents
        if self.read_only:
            total = self.manifest.documents if documents else self.manifest.passages
        else:
            total = self.count_documents() if documents else self.count_passages()
        fraction = min(1.0, TERM_SAMPLE / max(total, 1))
        clauses = ["part == 0"] if documents else []
        if fraction < 1.0:
            clauses.append(f"pk < {int(fraction * (1 << 63))}")
        rows = self._iterate(collection, " and ".join(clauses), ["terms"])
        counts: Counter[str] = Counter()
        for row in rows:
            counts.update(set(row["terms"].split()))
        return counts, (total / len(rows) if rows else 0.0)

    def _frequency(self, collection: str, term: str) -> int:
        """About how many rows hold ``term``: exact up to ``TERM_SAMPLE`` rows, estimated from a sample above."""
        word = stem(fold(term))
        if not word:
            return 0
        counts, scale = self.memo(f"sample:{collection}", lambda: self._sample(collection))
        return round(counts.get(word, 0) * scale)

    def passages_with(self, term: str) -> int:
        return self._frequency(self.location.passages, term)

    def documents_with(self, term: str) -> int:
        return self._frequency(self.location.documents, term)

    # ----- writing (buffered; ``flush`` writes a batch) -------------------------------------

    def add_document(self, document: Document, root: str, content_hash: str,
                     passages: Sequence[Passage], vectors: np.ndarray) -> None:
        if document.id in self._removes:  # a changed document: removed, then added again; upserted in place
            self._removes.remove(document.id)
        self._adds.append((document, root, content_hash, passages, vectors))
        self.added_metadata_keys.update(document.metadata)
        if len(self._adds) + len(self._removes) >= WRITE_BATCH:
            self.flush()

    def remove_document(self, document_id: str) -> None:
        self._removes.append(document_id)
        self.removed_any = True
        if len(self._adds) + len(self._removes) >= WRITE_BATCH:
            self.flush()

    def set_pending(self, document_pks: set[int]) -> None:
        """Record the documents being written (or none): the next update redoes them if this one dies."""
        value = json.dumps(sorted(document_pks))
        self._call(lambda c: c.alter_collection_properties(self.location.passages,
                                                           properties={PREFIX + "pending": value}))

    def pending(self) -> set[int]:
        properties = self._call(lambda c: c.describe_collection(self.location.passages).get("properties") or {})
        return set(json.loads(properties.get(PREFIX + "pending", "[]")))

    def wipe(self, document_pks: Sequence[int]) -> None:
        """Delete every row of these documents from both collections."""
        if document_pks:
            expression = in_list("document_pk", list(document_pks))
            self._call(lambda c: c.delete(self.location.passages, filter=expression))
            self._call(lambda c: c.delete(self.location.documents, filter=expression))

    def _upsert(self, collection: str, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), ROWS_PER_CALL):
            batch = rows[i:i + ROWS_PER_CALL]
            self._call(lambda c: c.upsert(collection, batch))

    def flush(self) -> None:
        """Write the buffered changes.

        Order: (1) the touched documents go into ``qa.pending``; (2) each added document's
        passages are upserted under deterministic keys and any passage beyond its new count is
        deleted; (3) its document rows (with the content hash) are upserted, extra parts
        deleted; (4) removed documents lose their passages, then their document rows; (5)
        ``qa.pending`` is cleared. A kill before (5) leaves the touched documents in
        ``qa.pending``: the next update wipes them and the indexer adds back those still in
        its sources. Searches keep answering throughout.
        """
        adds, removes = self._adds, self._removes
        self._adds, self._removes = [], []
        if not adds and not removes:
            return
        touched = {document_key(d.id) for d, *_ in adds} | {document_key(i) for i in removes}
        self.set_pending(touched)
        passage_rows: list[dict[str, Any]] = []
        document_rows: list[dict[str, Any]] = []
        for document, root, digest, passages, vectors in adds:
            film, title = document.film or "", document.title or ""
            shared = {"document_pk": document_key(document.id), "document_id": document.id, "film": film,
                      "film_key": fold(film), "title": title, "title_key": fold(title),
                      "filter_meta": filter_values(document.metadata)}
            for ordinal, (passage, vector) in enumerate(zip(passages, vectors)):
                passage_rows.append({**shared, "pk": passage_key(document.id, ordinal), "passage_id": passage.id,
                                     "ordinal": ordinal, "document_start": passage.document_start,
                                     "text": passage.text, "terms": analyse(f"{passage.text} {film}"),
                                     "vector": np.asarray(vector, dtype=np.float32).tolist()})
            pieces = parts(document.text)
            for number, piece in enumerate(pieces):
                document_rows.append({**shared, "pk": part_key(document.id, number), "part": number,
                                      "parts": len(pieces), "text": piece, "terms": analyse(f"{piece} {film}"),
                                      "metadata": document.metadata, "source": document.source, "root": root,
                                      "hash": digest})
        self._upsert(self.location.passages, passage_rows)
        if adds:
            passage_trim = " or ".join(f"(document_pk == {document_key(d.id)} and ordinal >= {len(ps)})"
                                       for d, _, _, ps, _ in adds)
            self._call(lambda c: c.delete(self.location.passages, filter=passage_trim))
        self._upsert(self.location.documents, document_rows)
        if adds:
            part_trim = " or ".join(f"(document_pk == {document_key(d.id)} and part >= {len(parts(d.text))})"
                                    for d, *_ in adds)
            self._call(lambda c: c.delete(self.location.documents, filter=part_trim))
        if removes:
            expression = in_list("document_pk", [document_key(i) for i in removes])
            self._call(lambda c: c.delete(self.location.passages, filter=expression))
            self._call(lambda c: c.delete(self.location.documents, filter=expression))
        self.set_pending(set())
