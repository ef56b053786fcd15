"""Killing `qa index` with SIGKILL at several points never breaks the index in use.

Each case starts a real `qa index` subprocess that rebuilds a copy of the shipped
reviews, kills it at a chosen moment (found by watching the index folder), then
checks that the index still opens and answers as before, and that the next
`qa index` completes the work.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.answering.pipeline import Pipeline
from qa.settings import Settings
from qa.stores.local import LocalStore, current_generation

ROOT = Path(__file__).resolve().parents[2]


def corpus(path: Path, copies: int) -> Path:
    """The shipped reviews, repeated under new ids, as JSON Lines (enough work to interrupt)."""
    from qa.ingest.loaders import load_path

    docs = list(load_path(ROOT / "documents"))
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(copies):
            for doc in docs:
                handle.write(json.dumps({"id": f"{doc.id}-{i}", "text": doc.text, "film": doc.film}) + "\n")
    return path


def start_index(index_dir: Path, source: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir)}
    return subprocess.Popen([sys.executable, "-m", "qa", "index", str(source), "--quiet", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    return False


def tmp_generation(index_dir: Path) -> Path | None:
    found = list(index_dir.glob("gen-*.tmp-*"))
    return found[0] if found else None


MOMENTS = {
    "while the models load": lambda d: True,
    "while embedding": lambda d: tmp_generation(d) is not None,
    "half-way through the run": None,  # at half the time a full run takes, measured first
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """An index of a small corpus, and the answer it gives before any crash."""
    base = tmp_path_factory.mktemp("crash")
    small = corpus(base / "small.jsonl", 1)
    index_dir = base / "index"
    process = start_index(index_dir, small)
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    started = time.monotonic()
    process = start_index(base / "timing-index", corpus(base / "big.jsonl", 3))
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    return base, small, index_dir, time.monotonic() - started


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigkill_during_a_rebuild_leaves_the_previous_index_answering(baseline, moment, tmp_path):
    base, small, original, full_run = baseline
    index_dir = tmp_path / "index"
    shutil.copytree(original, index_dir)
    generation = current_generation(index_dir)
    before = Pipeline(Settings(index_dir=index_dir)).search("who plays Sera?", 3)

    big = base / "big.jsonl"
    process = start_index(index_dir, big, "--rebuild")
    started = time.monotonic()
    condition = MOMENTS[moment] or (lambda d: time.monotonic() - started > 0.5 * full_run)
    reached = wait_for(lambda: condition(index_dir), process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert reached, f"`qa index` finished before the moment '{moment}' could be caught"

    assert current_generation(index_dir) == generation
    store = LocalStore.open(index_dir)
    assert store.count_documents() == 15
    after = Pipeline(Settings(index_dir=index_dir)).search("who plays Sera?", 3)
    assert [p.id for p in after] == [p.id for p in before]

    process = start_index(index_dir, big, "--rebuild")  # the next run completes the work
    assert process.wait(timeout=300) == 0, process.stderr.read().decode()
    assert not list(index_dir.glob("gen-*.tmp-*"))
    assert LocalStore.open(index_dir).count_documents() == 45
