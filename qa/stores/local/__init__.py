"""The local store: SQLite + FAISS in an index folder of atomically published generations.

``manifest`` (which generation, can it be read), ``store`` (reading and writing one
generation), ``sqlite`` (schema and rows), ``filters`` (filter SQL), ``vectors`` (FAISS),
``generations`` (updates: copy, change, publish, upgrade).
"""
from qa.stores.local.generations import Update, upgrade
from qa.stores.local.manifest import SCHEMA_VERSION, current_generation
from qa.stores.local.store import LocalStore
from qa.stores.local.vectors import VectorIndexConfig

__all__ = ["LocalStore", "SCHEMA_VERSION", "Update", "VectorIndexConfig", "current_generation", "upgrade"]
