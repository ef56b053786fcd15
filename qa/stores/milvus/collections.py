"""What the Milvus collections hold, and how rows, keys, words and filters are written for them.

Two collections per index, named ``<prefix>_passages`` and ``<prefix>_documents``:

* passages: one row per passage (primary key from the document id and the passage's
  ordinal), its text, its dense vector (HNSW, cosine), a BM25 sparse vector made by Milvus
  from ``terms``, the document's id, film and title, and ``filter_meta`` (every metadata
  value as lower-case strings) so that every filter is an expression on the row itself;
* documents: one row per part of a review (a VARCHAR holds 65,535 bytes, so a longer review is
  stored in parts of ``PART_CHARS`` characters), with its BM25 vector, content hash, the path
  it was indexed from and its metadata.

The film (lower case) is the partition key of both: a film filter reads one partition.

Words are analysed here, not by Milvus: Milvus Lite refuses the ``english`` analyzer and
ignores stemmer filters, so ``terms`` holds the text's words lower-cased, without accents
and Porter-stemmed (as SQLite FTS5's ``porter`` tokenizer does for the local store), and
queries are stemmed the same way. Both Milvus Lite and a Milvus server then match "actors"
to "actor" as the local store does.

The index's manifest (embedding model, dimension, counts, revision) is kept in the passages
collection's properties.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
from typing import Any, Iterable, Mapping, Sequence

from qa.stores.base import FILTER_FIELDS, Filters, Scope

SCHEMA_VERSION = 1
VARCHAR_MAX = 65_535  # bytes
PART_CHARS = 16_000  # 4 bytes per character at most: a part always fits a VARCHAR
ID_MAX = 1_024
PATH_MAX = 4_096
PREFIX = "qa."  # collection properties of the manifest: qa.embedding_model, qa.revision, ...

_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=1)
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("porter")


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    return _stemmer().stemWord(word)


def fold(text: str) -> str:
    """Lower case without accents (FTS5's unicode61 folding)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def analyse(text: str) -> str:
    """The words of ``text`` as BM25 sees them: folded, Porter-stemmed, separated by spaces."""
    return " ".join(stem(w) for w in _WORD.findall(fold(text)))


def key63(*parts: object) -> int:
    """A deterministic 63-bit primary key: the same document (and ordinal) always gets the same key."""
    digest = hashlib.blake2b("\x1f".join(str(p) for p in parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def document_key(document_id: str) -> int:
    return key63("document", document_id)


def passage_key(document_id: str, ordinal: int) -> int:
    return key63("passage", document_id, ordinal)


def part_key(document_id: str, part: int) -> int:
    return key63("part", document_id, part)


def parts(text: str) -> list[str]:
    """``text`` in pieces of at most ``PART_CHARS`` characters (one piece for most reviews)."""
    return [text[i:i + PART_CHARS] for i in range(0, max(len(text), 1), PART_CHARS)]


def filter_values(metadata: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each metadata key -> its values as lower-case strings (a list value gives each element)."""
    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"  # as SQLite's JSON casts it in the local store
        return value if isinstance(value, str) else json.dumps(value)
    out: dict[str, list[str]] = {}
    for key, value in metadata.items():
        values = value if isinstance(value, list) else [value]
        out[key] = [fold(text(v)) for v in values if v is not None and not isinstance(v, dict)]
    return out


def _literal(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_literal(v) for v in values) + "]"


def scope_expression(scope: Scope) -> str:
    """The Milvus filter expression for ``scope`` ('' for everything); both collections have these fields."""
    clauses = [filter_expression(scope.filters)] if scope.filters else []
    if scope.documents is not None:
        clauses.append(f"document_pk in [{', '.join(str(int(d)) for d in scope.documents)}]")
    return " and ".join(f"({c})" for c in clauses if c)


def filter_expression(filters: Filters) -> str:
    """Every filter as an expression: film and title case-insensitive, metadata any-of, case-insensitive."""
    clauses: list[str] = []
    for key, value in filters.items():
        values = [value] if isinstance(value, str) else list(value)
        if not values:
            return "document_pk < 0"  # an empty any-of matches nothing
        if key == "document_id":
            clauses.append(f"document_id in {_list(values)}")
        elif key in ("film", "title"):
            clauses.append(f"{key}_key in {_list(fold(v) for v in values)}")
        elif key not in FILTER_FIELDS:
            clauses.append(f"json_contains_any(filter_meta[{_literal(key)}], {_list(fold(v) for v in values)})")
    return " and ".join(clauses)


def in_list(field: str, values: Sequence[int]) -> str:
    return f"{field} in [{', '.join(str(int(v)) for v in values)}]"


def create_collections(client: Any, passages: str, documents: str, dimension: int, hnsw_m: int,
                       hnsw_ef_construction: int) -> None:
    """Both collections, with their indexes (nothing is created that exists already)."""
    from pymilvus import DataType, Function, FunctionType

    def common(schema: Any) -> None:
        schema.add_field("document_pk", DataType.INT64)
        schema.add_field("document_id", DataType.VARCHAR, max_length=ID_MAX)
        schema.add_field("film", DataType.VARCHAR, max_length=ID_MAX)
        schema.add_field("film_key", DataType.VARCHAR, max_length=ID_MAX, is_partition_key=True)
        schema.add_field("title", DataType.VARCHAR, max_length=PATH_MAX)
        schema.add_field("title_key", DataType.VARCHAR, max_length=PATH_MAX)
        schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True,
                         enable_match=True, analyzer_params={"tokenizer": "standard"})
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("filter_meta", DataType.JSON)
        schema.add_function(Function(name=f"{schema_name}_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["terms"], output_field_names=["sparse"]))

    def scalar_indexes(params: Any) -> None:
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        for field in ("document_pk", "document_id", "title_key"):
            params.add_index(field, index_type="INVERTED")

    if not client.has_collection(passages):
        schema_name = "passages"
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        common(schema)
        schema.add_field("passage_id", DataType.VARCHAR, max_length=ID_MAX)
        schema.add_field("ordinal", DataType.INT64)
        schema.add_field("document_start", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        params = client.prepare_index_params()
        params.add_index("vector", index_type="HNSW", metric_type="COSINE",
                         params={"M": hnsw_m, "efConstruction": hnsw_ef_construction})
        scalar_indexes(params)
        client.create_collection(passages, schema=schema, index_params=params)
    if not client.has_collection(documents):
        schema_name = "documents"
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        common(schema)
        schema.add_field("part", DataType.INT64)
        schema.add_field("parts", DataType.INT64)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("source", DataType.VARCHAR, max_length=PATH_MAX)
        schema.add_field("root", DataType.VARCHAR, max_length=PATH_MAX)
        schema.add_field("hash", DataType.VARCHAR, max_length=128)
        params = client.prepare_index_params()
        scalar_indexes(params)
        client.create_collection(documents, schema=schema, index_params=params)
