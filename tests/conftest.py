"""Shared fixtures: settings for a throw-away index, and the shipped reviews indexed once."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks._common import DATA  # ../shared/data, or QA_BENCH_DATA
from qa.settings import Settings  # importing qa sets HF_HUB_OFFLINE: nothing is downloaded

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ROOT / "documents"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(index_dir=tmp_path / "index")


@pytest.fixture(scope="session")
def shipped_settings(tmp_path_factory) -> Settings:
    """An index of documents/, built once per test session."""
    from qa.ingest.indexer import index_paths

    settings = Settings(index_dir=tmp_path_factory.mktemp("shipped") / "index")
    report = index_paths([DOCUMENTS], settings)
    assert report.added >= 13 and not report.problems
    return settings


def shared_data(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found ({path}; set QA_BENCH_DATA to its folder): "
                    "this test needs the shared data sets")
    return path


@pytest.fixture
def downgrade_to_schema_1():
    """A function turning the generation in use into what the previous program wrote (schema 1)."""
    return _downgrade_to_schema_1


def _downgrade_to_schema_1(index_dir: Path) -> str:
    """No documents_fts, schema version 1 in the manifest; the generation's name."""
    import json
    import sqlite3

    from qa.stores.local import current_generation

    generation = index_dir / current_generation(index_dir)
    conn = sqlite3.connect(generation / "store.sqlite")
    conn.execute("DROP TABLE documents_fts")
    conn.commit()
    conn.close()
    manifest = generation / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 1}))
    return generation.name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test not marked ``unit`` is ``integration``: it may load a model, build an index or start a server."""
    for item in items:
        if item.get_closest_marker("unit") is None and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
