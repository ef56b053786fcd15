"""Shared fixtures: settings for a throw-away index, the shipped reviews indexed once, and every store backend."""
from __future__ import annotations

import itertools
import os
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


# ----- store backends: the same test functions run on each ------------------------------------

BACKENDS = ["local", "milvus-lite-file", "milvus-lite-server", "milvus-server"]
_COLLECTIONS = itertools.count()


@pytest.fixture(scope="session")
def milvus_lite_server(tmp_path_factory):
    """One ``milvus-lite server`` for the session, on 127.0.0.1 at a free port."""
    from tests.milvus_server import LiteServer

    server = LiteServer(tmp_path_factory.mktemp("milvus-server"))
    server.start()
    yield server
    server.stop()


def backend_settings_for(kind: str, request, tmp_path: Path) -> Settings:
    """Settings for an empty index on the backend ``kind`` (dropped or forgotten after the test)."""
    from qa.stores.factory import where
    from qa.stores.milvus.client import call, forget

    if kind == "local":
        return Settings(index_dir=tmp_path / "index")
    collection = f"t{os.getpid()}_{next(_COLLECTIONS)}"
    if kind == "milvus-lite-file":
        settings = Settings(store=f"milvus-lite:{tmp_path / 'qa.db'}", milvus_collection=collection)
    elif kind == "milvus-lite-server":
        server = request.getfixturevalue("milvus_lite_server")
        settings = Settings(store=server.uri, milvus_collection=collection, milvus_timeout=5)
    else:
        uri = os.environ.get("QA_TEST_MILVUS_URI")
        if not uri:
            pytest.skip("QA_TEST_MILVUS_URI is not set: no real Milvus server to run the store tests against "
                        "(set it to http://HOST:19530, and QA_TEST_MILVUS_TOKEN if the server needs one)")
        settings = Settings(store=uri, milvus_collection=collection, milvus_token=os.environ.get("QA_TEST_MILVUS_TOKEN"))
    location = where(settings).milvus

    def clean_up() -> None:
        if kind != "milvus-lite-file":
            try:
                call(location, lambda c: [c.drop_collection(n) for n in (location.passages, location.documents)
                                          if c.has_collection(n)])
            except Exception:  # noqa: BLE001 - a test may have stopped the server; its data dir goes anyway
                pass
        forget(location)
    request.addfinalizer(clean_up)
    return settings


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def backend_settings(backend, request, tmp_path) -> Settings:
    """Settings for an empty index on each backend in turn: local, Milvus Lite file, Lite server, real Milvus."""
    return backend_settings_for(backend, request, tmp_path)
