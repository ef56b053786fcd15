"""The local store: one generation of the index, SQLite for documents and passages, FAISS for vectors.

Layout of an index folder::

    index/
      CURRENT             name of the generation in use (replaced atomically)
      gen-000003/
        manifest.json     schema version, embedding model, dimension, counts
        store.sqlite      documents, passages, FTS5 tables over passage and whole-document text
        vectors.faiss     IndexIDMap2 over IndexFlatIP (exact) or IndexHNSWFlat, keyed by passage pk

An update never touches the generation in use: it copies it to a temporary
folder, changes the copy, writes everything to disk, renames the folder to
its final name and only then replaces ``CURRENT``. A crash or kill at any
point leaves the previous generation intact and in use; leftovers of an
interrupted update are removed by the next one. Readers notice a new
``CURRENT`` and reopen (see ``current_generation``). Readers refuse a generation of
another schema version; one of an older, ``UPGRADABLE`` version is upgraded in the
copy by the next update, or by ``upgrade`` (which keeps the vectors as they are).

The vector index type follows the collection's size (``VectorIndexConfig``):
exact inner product (flat) below a threshold of passages, HNSW from there on.
Updates always work on a flat copy (HNSW cannot remove vectors); the HNSW
graph is built from it when the generation is published, and its search
parameter (efSearch) is stored in the manifest. Filtered dense searches over
few passages are exact whatever the index type (the vectors are scored
directly), so a narrow filter never loses recall to the approximate graph.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Sequence

import faiss
import numpy as np

from qa.schema import Document, Passage
from qa.stores.base import EVERYTHING, Filters, IndexUnavailable, Manifest, Scope
from qa.stores.local.filters import filter_clause
from qa.stores.local.manifest import check_manifest, current_generation
from qa.stores.local.sqlite import connect, row_to_document
from qa.stores.local.vectors import EXACT_FILTER_MAX, exact_among

DF_CACHE_MAX = 100_000  # terms whose frequencies a generation keeps


class LocalStore:
    """One generation of the index, open for reading (and for writing when updating)."""

    def __init__(self, path: Path, manifest: Manifest, conn: sqlite3.Connection, vectors: faiss.Index,
                 read_only: bool = False):
        self.path = path
        self.manifest = manifest
        self.conn = conn
        self.vectors = vectors
        self.read_only = read_only  # a published generation never changes: lookups can be cached
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}
        inner = faiss.downcast_index(faiss.downcast_index(vectors).index)
        self._hnsw = inner if isinstance(inner, faiss.IndexHNSW) else None
        if self._hnsw is not None and manifest.hnsw_ef_search:
            self._hnsw.hnsw.efSearch = manifest.hnsw_ef_search

    @property
    def index_type(self) -> str:
        return "hnsw" if self._hnsw is not None else "flat"

    def memo(self, key: str, compute):
        """``compute()``, cached for the life of a read-only generation (recomputed while updating)."""
        if not self.read_only:
            return compute()
        if key not in self._cache:
            value = compute()
            self._cache.setdefault(key, value)
        return self._cache[key]

    # ----- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path, embedding_model: str | None = None, ef_search: int | None = None,
             upgradable: bool = False, mapped: bool = True) -> "LocalStore":
        """The generation in use, for reading. Checks schema and (if given) the model.

        ``mapped``: the vectors are memory-mapped from the generation's file, read-only, so that
        every process serving the same index (``qa serve --workers N``) shares one copy of them in
        the page cache; ``Update`` reads them into memory instead (``mapped=False``) to copy them.

        ``ef_search`` overrides the HNSW search depth stored in the manifest (for benchmarks).
        ``upgradable`` also accepts an older schema of ``UPGRADABLE``: only ``Update`` asks for
        it, because it copies the generation and upgrades the copy.
        """
        name = current_generation(index_dir)
        if name is None:
            raise IndexUnavailable(f"no index in {index_dir}; build it with `qa index`")
        path = index_dir / name
        manifest = Manifest.load(path / "manifest.json")
        check_manifest(manifest, embedding_model, path, upgradable)
        try:
            conn = connect(path / "store.sqlite", read_only=True)
            conn.execute("SELECT count(*) FROM passages").fetchone()
            flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mapped else 0
            vectors = faiss.read_index(str(path / "vectors.faiss"), flags)
        except (sqlite3.Error, RuntimeError) as err:
            raise IndexUnavailable(f"the index in {path} is damaged ({str(err).splitlines()[0]}); "
                                   "rebuild it with `qa index --rebuild`") from err
        if vectors.ntotal != manifest.passages:
            raise IndexUnavailable(f"the index in {path} is inconsistent ({vectors.ntotal} vectors for "
                                   f"{manifest.passages} passages); rebuild it with `qa index --rebuild`")
        if ef_search:
            manifest.hnsw_ef_search = ef_search
        return cls(path, manifest, conn, vectors, read_only=True)

    def close(self) -> None:
        self.conn.close()

    # ----- reading ---------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def count_documents(self) -> int:
        return self._rows("SELECT count(*) FROM documents")[0][0]

    def count_passages(self, scope: Scope = EVERYTHING) -> int:
        allowed = self._allowed(scope)
        return self._rows("SELECT count(*) FROM passages")[0][0] if allowed is None else len(allowed)

    def describe(self) -> dict[str, Any]:
        return {"backend": "local", "index": str(self.path.parent), "generation": self.path.name,
                "vector_index": self.index_type, "size_on_disk_bytes": self.size_on_disk()}

    def films(self) -> list[tuple[str, int]]:
        """Every film title in the index with its number of reviews, by title (cached per generation)."""
        def compute() -> list[tuple[str, int]]:
            rows = self._rows("SELECT film, count(*) FROM documents WHERE film IS NOT NULL AND film != '' "
                              "GROUP BY film ORDER BY film")
            return [(r[0], r[1]) for r in rows]
        return list(self.memo("films", compute))

    def metadata_keys(self) -> set[str]:
        """Every metadata key used by some document (cached per generation: /ask checks filters with it)."""
        def compute() -> frozenset[str]:
            rows = self._rows("SELECT DISTINCT j.key FROM documents, json_each(documents.metadata) AS j")
            return frozenset(r[0] for r in rows)
        return set(self.memo("metadata_keys", compute))

    def size_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def document(self, document_id: str) -> Document | None:
        rows = self._rows("SELECT * FROM documents WHERE id = ?", (document_id,))
        return row_to_document(rows[0]) if rows else None

    def document_hashes(self) -> dict[str, tuple[str, str, str]]:
        """id -> (content hash, root path it was indexed from, source file)."""
        return {r["id"]: (r["hash"], r["root"], r["source"])
                for r in self._rows("SELECT id, hash, root, source FROM documents")}

    def passages(self, pks: Sequence[int]) -> dict[int, Passage]:
        """Passages by pk (pks that no longer exist are left out)."""
        if not len(pks):
            return {}
        marks = ",".join("?" * len(pks))
        rows = self._rows(
            f"SELECT p.pk, p.id, p.text, p.document_start, d.id AS document_id, d.film, d.title "
            f"FROM passages p JOIN documents d ON d.pk = p.document_pk WHERE p.pk IN ({marks})",
            [int(pk) for pk in pks])
        by_pk = {r["pk"]: Passage(id=r["id"], document_id=r["document_id"], text=r["text"],
                                  document_start=r["document_start"], film=r["film"], title=r["title"])
                 for r in rows}
        return by_pk

    def passages_of(self, document_id: str) -> list[Passage]:
        rows = self._rows("SELECT p.pk FROM passages p JOIN documents d ON d.pk = p.document_pk "
                          "WHERE d.id = ? ORDER BY p.ordinal", (document_id,))
        pks = [r[0] for r in rows]
        by_pk = self.passages(pks)
        return [by_pk[pk] for pk in pks]

    SCOPE_CACHE_MAX = 256  # scopes whose passage pks a read-only generation keeps

    def _allowed(self, scope: Scope, documents: bool = False) -> np.ndarray | None:
        """pks of the passages (or ``documents``) in ``scope``; None when it is everything."""
        if not scope.filters and scope.documents is None:
            return None

        def compute() -> np.ndarray:
            pks = self.filter_document_pks(scope.filters) if documents else self.filter_passage_pks(scope.filters)
            if scope.documents is not None:
                among = np.asarray(scope.documents, dtype=np.int64)
                pks = (np.intersect1d(pks, among) if documents
                       else np.intersect1d(pks, self.passage_pks_of_documents(scope.documents)))
            return pks
        if not self.read_only:
            return compute()
        cache = self._cache.setdefault("scopes", {})
        key = ("d" if documents else "p") + scope.key
        if key not in cache:
            if len(cache) >= self.SCOPE_CACHE_MAX:
                cache.clear()
            cache[key] = compute()
        return cache[key]

    def filter_passage_pks(self, filters: Filters) -> np.ndarray:
        """pks of the passages whose documents match every filter (a list value means any of)."""
        where, params = filter_clause(filters)
        rows = self._rows(f"SELECT p.pk FROM passages p JOIN documents d ON d.pk = p.document_pk WHERE {where}",
                          params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def filter_document_pks(self, filters: Filters) -> np.ndarray:
        """pks of the documents that match every filter (the same filters as ``filter_passage_pks``)."""
        where, params = filter_clause(filters)
        rows = self._rows(f"SELECT d.pk FROM documents d WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def owners(self, passage_pks: Sequence[int]) -> dict[int, tuple[int, str]]:
        """passage pk -> (pk of its document, its film)."""
        rows = self._rows("SELECT p.pk, p.document_pk, d.film FROM passages p JOIN documents d ON d.pk = p.document_pk "
                          "WHERE p.pk IN (SELECT value FROM json_each(?))",
                          (json.dumps([int(pk) for pk in passage_pks]),))
        return {r[0]: (r[1], r[2] or "") for r in rows}

    def passage_pks_of_documents(self, document_pks: Sequence[int]) -> np.ndarray:
        """pks of every passage of these documents."""
        rows = self._rows("SELECT pk FROM passages WHERE document_pk IN (SELECT value FROM json_each(?))",
                          (json.dumps([int(pk) for pk in document_pks]),))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def _id_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted pks, their rows in the vector storage)."""
        def compute() -> tuple[np.ndarray, np.ndarray]:
            ids = faiss.vector_to_array(faiss.downcast_index(self.vectors).id_map)
            order = np.argsort(ids, kind="stable")
            return ids[order], order
        return self.memo("id_lookup", compute)

    def _exact_among(self, query: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[int, float]]:
        with self._lock:
            sorted_ids, rows = self._id_lookup()
            return exact_among(self.vectors, sorted_ids, rows, query, k, allowed)

    def dense_search(self, query: np.ndarray, k: int, scope: Scope = EVERYTHING) -> list[tuple[int, float]]:
        """(pk, cosine similarity) of the ``k`` nearest passages in ``scope``.

        The scope is applied inside the search: up to ``EXACT_FILTER_MAX`` allowed passages are
        scored exactly; a wider one is passed to FAISS as an ID selector.
        """
        allowed = self._allowed(scope)
        if self.vectors.ntotal == 0 or (allowed is not None and len(allowed) == 0):
            return []
        if allowed is not None and len(allowed) <= EXACT_FILTER_MAX:
            return self._exact_among(query, k, allowed)
        params = None
        if self._hnsw is not None:
            params = faiss.SearchParametersHNSW(efSearch=max(self._hnsw.hnsw.efSearch, k))
            if allowed is not None:
                params.sel = faiss.IDSelectorBatch(allowed)
        elif allowed is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        scores, ids = self.vectors.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def _frequency(self, table: str, term: str) -> int:
        """How many rows of the FTS5 ``table`` contain ``term`` (after stemming); cached per generation."""
        cache = self._cache.setdefault(f"df:{table}", {}) if self.read_only else {}
        value = cache.get(term)
        if value is None:
            if len(cache) > DF_CACHE_MAX:
                cache.clear()
            value = cache[term] = self._rows(f"SELECT count(*) FROM {table} WHERE {table} MATCH ?",
                                             (f'"{term}"',))[0][0]
        return value

    def passages_with(self, term: str) -> int:
        """How many passages contain ``term`` (after FTS5's stemming); cached per generation."""
        return self._frequency("passages_fts", term)

    def documents_with(self, term: str) -> int:
        """How many whole documents contain ``term`` (after FTS5's stemming); cached per generation."""
        return self._frequency("documents_fts", term)

    def keyword_search(self, terms: Sequence[str], k: int, scope: Scope = EVERYTHING) -> list[tuple[int, float]]:
        """(passage pk, BM25 score, higher is better) from passages_fts, for any of ``terms``."""
        return self._bm25("passages_fts", list(terms), k, self._allowed(scope))

    def document_search(self, terms: Sequence[str], k: int, scope: Scope = EVERYTHING) -> list[tuple[int, float]]:
        """(document pk, BM25 score of the whole document, higher is better) in ``scope``."""
        return self._bm25("documents_fts", list(terms), k, self._allowed(scope, documents=True))

    def _bm25(self, table: str, terms: list[str], k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        """The ``k`` best rows of the FTS5 ``table`` for any of ``terms``, optionally among ``allowed`` rowids."""
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        sql = f"SELECT rowid, -bm25({table}) AS score FROM {table} WHERE {table} MATCH ?"
        params: list[Any] = [match]
        if allowed is not None:
            if len(allowed) == 0:
                return []
            sql += " AND rowid IN (SELECT value FROM json_each(?))"  # one parameter, however many pks
            params.append(json.dumps([int(a) for a in allowed]))
        sql += f" ORDER BY bm25({table}) LIMIT ?"
        params.append(k)
        return [(r[0], float(r[1])) for r in self._rows(sql, params)]

    # ----- writing (only on a generation being updated) --------------------------------------

    def add_document(self, document: Document, root: str, content_hash: str,
                     passages: Sequence[Passage], vectors: np.ndarray) -> None:
        with self._lock:
            cur = self.conn.execute(
                "INSERT INTO documents (id, film, title, metadata, text, source, root, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (document.id, document.film, document.title, json.dumps(document.metadata, ensure_ascii=False),
                 document.text, document.source, root, content_hash))
            doc_pk = cur.lastrowid
            self.conn.execute("INSERT INTO documents_fts (rowid, text, film) VALUES (?, ?, ?)",
                              (doc_pk, document.text, document.film))
            pks = []
            for ordinal, passage in enumerate(passages):
                cur = self.conn.execute(
                    "INSERT INTO passages (id, document_pk, ordinal, document_start, text) VALUES (?, ?, ?, ?, ?)",
                    (passage.id, doc_pk, ordinal, passage.document_start, passage.text))
                pks.append(cur.lastrowid)
                self.conn.execute("INSERT INTO passages_fts (rowid, text, film) VALUES (?, ?, ?)",
                                  (cur.lastrowid, passage.text, document.film or ""))
            if pks:
                self.vectors.add_with_ids(vectors, np.asarray(pks, dtype=np.int64))

    def remove_document(self, document_id: str) -> None:
        with self._lock:
            pks = [r[0] for r in self.conn.execute(
                "SELECT p.pk FROM passages p JOIN documents d ON d.pk = p.document_pk WHERE d.id = ?",
                (document_id,))]
            if pks:
                marks = ",".join("?" * len(pks))
                self.conn.execute(f"DELETE FROM passages_fts WHERE rowid IN ({marks})", pks)
                self.vectors.remove_ids(np.asarray(pks, dtype=np.int64))
            self.conn.execute("INSERT INTO documents_fts (documents_fts, rowid, text, film) "
                              "SELECT 'delete', pk, text, film FROM documents WHERE id = ?", (document_id,))
            self.conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))
