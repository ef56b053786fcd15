"""On every backend: a `qa index` killed with SIGKILL mid-run leaves the index answering, the next run
converges to the same contents, and a server keeps answering while an index run writes.

A Milvus Lite *file* is left out of these two: one process at a time may open it, so no server
(or test) can read it while `qa index` writes. The Lite server runs the same Milvus code.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qa.ingest.indexer import index_paths
from qa.ingest.loaders import load_path
from qa.ingest.passages import split_document
from qa.serving.app import create_app
from qa.settings import Settings
from qa.stores.factory import open_store, where

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ROOT / "documents"
COPIES = 12  # 180 reviews, ~1,400 passages: a run of several seconds


@pytest.fixture
def shared_backend(backend, request, tmp_path) -> Settings:
    if backend == "milvus-lite-file":
        pytest.skip("a Milvus Lite file is opened by one process at a time: nothing can read it while "
                    "`qa index` writes (the Lite server case runs the same Milvus code)")
    from tests.conftest import backend_settings_for

    return backend_settings_for(backend, request, tmp_path)


def corpus(path: Path) -> Path:
    docs = list(load_path(DOCUMENTS))
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(COPIES):
            for doc in docs:
                handle.write(json.dumps({"id": f"{doc.id}-{i}", "text": doc.text, "film": doc.film}) + "\n")
    return path


def environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, "QA_STORE": str(where(settings)), "QA_MILVUS_COLLECTION": settings.milvus_collection}


def start_index(settings: Settings, source: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qa", "index", str(source), "--quiet"], cwd=ROOT,
                            env=environment(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def writing(settings: Settings):
    """True once the run has written part of its work where readers can see it (or staged it, locally)."""
    place = where(settings)
    if place.folder is not None:
        return lambda: any(place.folder.glob("gen-*.tmp-*/store.sqlite"))
    from qa.stores.milvus.client import call

    location = place.milvus

    def count() -> int:
        rows = call(location, lambda c: c.query(location.passages, filter="", output_fields=["count(*)"]))
        return int(rows[0]["count(*)"])
    base = count()
    return lambda: count() > base


def test_a_killed_index_run_leaves_the_index_answering_and_the_next_run_converges(shared_backend, tmp_path):
    index_paths([DOCUMENTS], shared_backend)
    source = corpus(tmp_path / "more.jsonl")
    process = start_index(shared_backend, source)
    started = writing(shared_backend)
    deadline = time.monotonic() + 300
    while not started() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()}"
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()

    client = TestClient(create_app(shared_backend))
    answer = client.post("/ask", json={"question": "who plays Sera?"})
    assert answer.status_code == 200 and answer.json()["answers"][0]["text"] == "Elisabeth Shue"

    finished = subprocess.run([sys.executable, "-m", "qa", "index", str(source), "--quiet"], cwd=ROOT,
                              env=environment(shared_backend), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    expected = list(load_path(DOCUMENTS)) + list(load_path(source))
    store = open_store(shared_backend)
    assert sorted(store.document_hashes()) == sorted(d.id for d in expected)
    assert store.count_passages() == sum(len(split_document(d)) for d in expected)
    assert store.manifest.passages == store.count_passages()
    fargo = next(d for d in expected if d.id == "fargo-3")
    assert [p.text for p in store.passages_of("fargo-3")] == [p.text for p in split_document(fargo)]


def test_a_server_keeps_answering_while_an_index_run_writes(shared_backend, tmp_path):
    index_paths([DOCUMENTS], shared_backend)
    client = TestClient(create_app(shared_backend))
    process = start_index(shared_backend, corpus(tmp_path / "more.jsonl"))
    answers = []
    while process.poll() is None:
        response = client.post("/ask", json={"question": "who plays Sera?"})
        answers.append((response.status_code, response.json().get("answers", [{}])[0].get("text")))
    assert process.returncode == 0, process.stderr.read().decode()
    assert len(answers) >= 3 and set(answers) == {(200, "Elisabeth Shue")}
    assert open_store(shared_backend).count_documents() == 15 * (COPIES + 1)
