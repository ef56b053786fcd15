"""The persistent index: SQLite for documents and passages, FAISS for vectors.

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

import fcntl
import json
import os
import re
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import faiss
import numpy as np

from qa.schema import Document, Passage

SCHEMA_VERSION = 2  # 2: documents_fts (keyword search over whole documents)
UPGRADABLE = frozenset({1})  # older schemas that ``upgrade`` (or any update) brings to SCHEMA_VERSION
CURRENT = "CURRENT"
_GEN = re.compile(r"^gen-(\d{6})$")
Filters = Mapping[str, "str | Sequence[str]"]
FILTER_COLUMNS = {"document_id": "d.id", "film": "d.film", "title": "d.title"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    pk       INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    film     TEXT COLLATE NOCASE,
    title    TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    text     TEXT NOT NULL,
    source   TEXT NOT NULL DEFAULT '',
    root     TEXT NOT NULL DEFAULT '',
    hash     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_film ON documents(film);
CREATE INDEX IF NOT EXISTS documents_root ON documents(root);
CREATE TABLE IF NOT EXISTS passages (
    pk             INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    document_pk    INTEGER NOT NULL REFERENCES documents(pk) ON DELETE CASCADE,
    ordinal        INTEGER NOT NULL,
    document_start INTEGER NOT NULL,
    text           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_document ON passages(document_pk);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    text, film, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    text, film, content = 'documents', content_rowid = 'pk',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""
# documents_fts is an external-content table: it indexes documents.text without a second copy
# of it, so it must be told what it indexed when a document goes ('delete' in remove_document).


# Question words that carry no topic; left out of keyword queries.
STOPWORDS = frozenset("""a an and are as at be by did do does for from had has have he her his how in is it its
of on or she that the their them they this to was were what when where which who whom whose why will with
you your movie film""".split())


# A filtered dense search over at most this many passages scores their vectors directly (exact)
EXACT_FILTER_MAX = 20_000
# Keyword queries leave out words found in more passages than this share (or count), see query_terms
COMMON_TERM_FRACTION = 0.02
COMMON_TERM_MIN = 2_000
# Document (whole review) queries leave out words found in more than this share of documents, see document_terms
DOCUMENT_COMMON_FRACTION = 0.2
DF_CACHE_MAX = 100_000


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


def _flat_view(index: faiss.Index) -> np.ndarray:
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
        flat.add_with_ids(np.array(_flat_view(inner)), faiss.vector_to_array(idmap.id_map))
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
        out.add_with_ids(np.array(_flat_view(idmap.index)), faiss.vector_to_array(idmap.id_map))
    return out


class IndexUnavailable(RuntimeError):
    """No usable index: missing, built with another model or schema, or damaged."""


@dataclass
class Manifest:
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


def current_generation(index_dir: Path) -> str | None:
    """The name of the generation in use, or None when nothing was built yet."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name if _GEN.match(name) else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode={'ro' if read_only else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class Store:
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

    def _cached(self, key: str, compute):
        if not self.read_only:
            return compute()
        if key not in self._cache:
            value = compute()
            self._cache.setdefault(key, value)
        return self._cache[key]

    # ----- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, index_dir: Path, embedding_model: str | None = None, ef_search: int | None = None,
             upgradable: bool = False) -> "Store":
        """The generation in use, for reading. Checks schema and (if given) the model.

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
            conn = _connect(path / "store.sqlite", read_only=True)
            conn.execute("SELECT count(*) FROM passages").fetchone()
            vectors = faiss.read_index(str(path / "vectors.faiss"))
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

    def count_passages(self) -> int:
        return self._rows("SELECT count(*) FROM passages")[0][0]

    def films(self) -> list[tuple[str, int]]:
        """Every film title in the index with its number of reviews, by title (cached per generation)."""
        def compute() -> list[tuple[str, int]]:
            rows = self._rows("SELECT film, count(*) FROM documents WHERE film IS NOT NULL AND film != '' "
                              "GROUP BY film ORDER BY film")
            return [(r[0], r[1]) for r in rows]
        return list(self._cached("films", compute))

    def metadata_keys(self) -> set[str]:
        """Every metadata key used by some document (cached per generation: /ask checks filters with it)."""
        def compute() -> frozenset[str]:
            rows = self._rows("SELECT DISTINCT j.key FROM documents, json_each(documents.metadata) AS j")
            return frozenset(r[0] for r in rows)
        return set(self._cached("metadata_keys", compute))

    def size_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def document(self, document_id: str) -> Document | None:
        rows = self._rows("SELECT * FROM documents WHERE id = ?", (document_id,))
        return _row_to_document(rows[0]) if rows else None

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

    def filter_passage_pks(self, filters: Filters) -> np.ndarray:
        """pks of the passages whose documents match every filter (a list value means any of)."""
        where, params = _filter_clause(filters)
        rows = self._rows(f"SELECT p.pk FROM passages p JOIN documents d ON d.pk = p.document_pk WHERE {where}",
                          params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def filter_document_pks(self, filters: Filters) -> np.ndarray:
        """pks of the documents that match every filter (the same filters as ``filter_passage_pks``)."""
        where, params = _filter_clause(filters)
        rows = self._rows(f"SELECT d.pk FROM documents d WHERE {where}", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def document_pks(self, passage_pks: Sequence[int]) -> dict[int, int]:
        """passage pk -> pk of its document."""
        rows = self._rows("SELECT pk, document_pk FROM passages WHERE pk IN (SELECT value FROM json_each(?))",
                          (json.dumps([int(pk) for pk in passage_pks]),))
        return {r[0]: r[1] for r in rows}

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
        return self._cached("id_lookup", compute)

    def _exact_among(self, query: np.ndarray, k: int, allowed: np.ndarray) -> list[tuple[int, float]]:
        """Exact top ``k`` among ``allowed`` pks, scoring their stored vectors directly."""
        with self._lock:
            sorted_ids, rows = self._id_lookup()
            if not len(sorted_ids):
                return []
            allowed = np.unique(np.asarray(allowed, dtype=np.int64))
            pos = np.minimum(np.searchsorted(sorted_ids, allowed), len(sorted_ids) - 1)
            where = pos[sorted_ids[pos] == allowed]  # allowed pks that have a vector
            if not len(where):
                return []
            storage = _flat_view(faiss.downcast_index(self.vectors).index)
            scores = storage[rows[where]] @ query.reshape(-1).astype(np.float32)
        pks = sorted_ids[where]
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(pks[i]), float(scores[i])) for i in top]

    def dense_search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(pk, cosine similarity) of the ``k`` nearest passages, optionally among ``allowed`` pks.

        A filter is applied inside the search: up to ``EXACT_FILTER_MAX`` allowed passages are
        scored exactly; a wider filter is passed to FAISS as an ID selector.
        """
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

    def document_frequency(self, term: str) -> int:
        """How many passages contain ``term`` (after FTS5's stemming); cached per generation."""
        return self._frequency("passages_fts", term)

    def documents_with(self, term: str) -> int:
        """How many whole documents contain ``term`` (after FTS5's stemming); cached per generation."""
        return self._frequency("documents_fts", term)

    def query_terms(self, query: str) -> list[str]:
        """The words of ``query`` that are searched: no stopwords, and no very common words.

        A word in more than ``max(COMMON_TERM_FRACTION * passages, COMMON_TERM_MIN)`` passages
        adds almost nothing to BM25 but makes FTS5 score every passage that has it; it is left
        out as long as a rarer word remains (the rarest word is always kept).
        """
        total = self.manifest.passages if self.read_only else self.count_passages()
        return _drop_common(content_words(query), total, COMMON_TERM_FRACTION, self.document_frequency)

    def document_terms(self, query: str) -> list[str]:
        """The words of ``query`` searched in whole documents: looser than ``query_terms``.

        In a whole review, a fairly common word of the question ("directed", "set", "novel")
        next to the title's words is what tells the review that answers apart from the other
        reviews of the same film, so only words in more than ``DOCUMENT_COMMON_FRACTION`` of the
        documents (which would make FTS5 score most of them) are left out.
        """
        total = self.manifest.documents if self.read_only else self.count_documents()
        return _drop_common(content_words(query), total, DOCUMENT_COMMON_FRACTION, self.documents_with)

    def keyword_search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(passage pk, BM25 score, higher is better) from passages_fts; ``query`` is plain words."""
        return self._bm25("passages_fts", self.query_terms(query), k, allowed)

    def document_search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(document pk, BM25 score of the whole document, higher is better), optionally among ``allowed``."""
        return self._bm25("documents_fts", self.document_terms(query), k, allowed)

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


def content_words(query: str) -> list[str]:
    """The distinct words of ``query`` that can be searched: lower case, no stopwords, no single letters."""
    return list(dict.fromkeys(t for t in re.findall(r"\w+", query.lower()) if len(t) > 1 and t not in STOPWORDS))


def _drop_common(terms: list[str], total: int, fraction: float, frequency: Callable[[str], int]) -> list[str]:
    """``terms`` without those in more than ``max(fraction * total, COMMON_TERM_MIN)`` rows, keeping the rarest.

    Collections of at most ``COMMON_TERM_MIN`` rows keep every term: they are cheap to score.
    """
    if len(terms) < 2 or total <= COMMON_TERM_MIN:
        return terms
    limit = max(fraction * total, COMMON_TERM_MIN)
    counts = {t: frequency(t) for t in terms}
    kept = [t for t in terms if counts[t] <= limit]
    return kept or [min(terms, key=lambda t: counts[t])]


def _filter_clause(filters: Filters) -> tuple[str, list[Any]]:
    """SQL condition on documents ``d`` for every filter (a list value means any of), and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        values = [value] if isinstance(value, str) else list(value)
        marks = ",".join("?" * len(values))
        column = FILTER_COLUMNS.get(key)
        if not values:
            clauses.append("0")
            continue
        if column is None:  # a metadata field: a scalar, or a list of which any may match
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(d.metadata, ?) AS j "
                           f"WHERE CAST(j.value AS TEXT) COLLATE NOCASE IN ({marks}))")
            params.append(f'$."{key}"')
        else:
            nocase = " COLLATE NOCASE" if key in ("film", "title") else ""
            clauses.append(f"{column}{nocase} IN ({marks})")
        params.extend(str(v) for v in values)
    return " AND ".join(clauses) or "1", params


def _row_to_document(row: sqlite3.Row) -> Document:
    return Document(id=row["id"], text=row["text"], film=row["film"], title=row["title"],
                    metadata=json.loads(row["metadata"]), source=row["source"])


def check_manifest(manifest: Manifest, embedding_model: str | None, path: Path, upgradable: bool = False) -> None:
    """Refuse a generation this program cannot search correctly, saying what to run."""
    version = manifest.schema_version
    if version != SCHEMA_VERSION and not (upgradable and version in UPGRADABLE):
        fix = ("upgrade it in a few seconds with `qa index --upgrade` (no re-embedding), or rebuild it with "
               "`qa index --rebuild`" if version in UPGRADABLE else "rebuild it with `qa index --rebuild`")
        raise IndexUnavailable(
            f"the index in {path} has schema version {version}, this program reads version {SCHEMA_VERSION}; {fix}")
    if embedding_model is not None and manifest.embedding_model != embedding_model:
        raise IndexUnavailable(
            f"the index in {path} was built with the embedding model {manifest.embedding_model!r}, "
            f"but {embedding_model!r} is configured; searching it would return wrong results. "
            "Rebuild it with `qa index --rebuild`, or set QA_EMBEDDING_MODEL back")


class IndexLocked(RuntimeError):
    pass


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
        self.store: Store | None = None
        self.previous: str | None = None
        self.upgraded_from: int | None = None
        self._previous_manifest: Manifest | None = None
        self._lock_file = None
        self._tmp: Path | None = None

    def __enter__(self) -> Store:
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
            old = Store.open(self.index_dir, self.embedding_model, upgradable=True)
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
        conn = _connect(db, read_only=False) if db.exists() else _create(db)
        conn.executescript(_SCHEMA)
        if self._previous_manifest is not None and self._previous_manifest.schema_version != SCHEMA_VERSION:
            self.upgraded_from = self._previous_manifest.schema_version
            _upgrade_schema(conn, self.upgraded_from)
        self.store = Store(self._tmp, manifest, conn, vectors)
        return self.store

    def _next_name(self) -> str:
        numbers = [int(m.group(1)) for p in self.index_dir.iterdir() if (m := _GEN.match(p.name))]
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
        _fsync_dir(self.index_dir)
        self._tmp = None
        self._remove_old(keep={final.name, self.previous})
        return final.name

    def _vectors_to_publish(self, store: Store) -> faiss.Index:
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
            if _GEN.match(path.name) and path.name not in keep:
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


def _upgrade_schema(conn: sqlite3.Connection, from_version: int) -> None:
    """Fill what a copy of an older generation lacks (``_SCHEMA`` has just created the new tables)."""
    if from_version < 2:
        conn.execute("INSERT INTO documents_fts (documents_fts) VALUES ('rebuild')")  # from documents.text


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


def _create(db: Path) -> sqlite3.Connection:
    sqlite3.connect(db).close()
    return _connect(db, read_only=False)
