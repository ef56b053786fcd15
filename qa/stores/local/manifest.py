"""Which generation of a local index is in use, and whether this program can read it."""
from __future__ import annotations

import re
from pathlib import Path

from qa.stores.base import IndexUnavailable, Manifest

SCHEMA_VERSION = 2  # 2: documents_fts (keyword search over whole documents)
UPGRADABLE = frozenset({1})  # older schemas that ``upgrade`` (or any update) brings to SCHEMA_VERSION
CURRENT = "CURRENT"
GENERATION = re.compile(r"^gen-(\d{6})$")


def current_generation(index_dir: Path) -> str | None:
    """The name of the generation in use, or None when nothing was built yet."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return name if GENERATION.match(name) else None


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
