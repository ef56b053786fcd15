"""The SQLite half of a local generation: its schema, connections and rows."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from qa.schema import Document

SCHEMA = """
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


def connect(path: Path, read_only: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode={'ro' if read_only else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def create(db: Path) -> sqlite3.Connection:
    sqlite3.connect(db).close()
    return connect(db, read_only=False)


def upgrade_schema(conn: sqlite3.Connection, from_version: int) -> None:
    """Fill what a copy of an older generation lacks (``SCHEMA`` has just created the new tables)."""
    if from_version < 2:
        conn.execute("INSERT INTO documents_fts (documents_fts) VALUES ('rebuild')")  # from documents.text


def row_to_document(row: sqlite3.Row) -> Document:
    return Document(id=row["id"], text=row["text"], film=row["film"], title=row["title"],
                    metadata=json.loads(row["metadata"]), source=row["source"])
