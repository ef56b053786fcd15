"""The package installs like one: the wheel carries the span model and the chat's files, and answers
from outside the repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from qa.ingest.loaders import load_path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = [
    "qa/reading/span_model/model.safetensors", "qa/reading/span_model/reader.json",
    "qa/reading/span_model/config.json", "qa/reading/span_model/tokenizer.json",
    "qa/serving/web/templates/index.html", "qa/serving/web/templates/signin.html",
    "qa/serving/web/static/app.js", "qa/serving/web/static/chat.css", "qa/serving/web/suggestions.json",
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the build needs only setuptools, already installed (nothing is downloaded).
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(ROOT), "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-2000:]
    (found,) = out.glob("film_review_qa-*.whl")
    return found


def test_wheel_holds_the_model_templates_and_static_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [n for n in NEEDED if n not in names] == []
    assert not any(n.startswith(("tests/", "benchmarks/", "training/", "index/")) for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "qa = qa.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_unpacked_wheel_indexes_and_answers_outside_the_repository(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    reviews = tmp_path / "reviews"
    reviews.mkdir()
    shutil.copy(ROOT / "documents" / "leaving-las-vegas.md", reviews)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "QA_INDEX_DIR": str(tmp_path / "index")}

    def qa(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "qa", *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import qa; print(qa.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(site)), where.stdout  # the wheel's copy, not the checkout
    indexed = qa("index", str(reviews))
    assert indexed.returncode == 0, indexed.stderr[-2000:]
    asked = qa("ask", "who plays Sera?", "--json")
    assert asked.returncode == 0, asked.stderr[-2000:]
    answer = json.loads(asked.stdout)["answers"][0]
    (review,) = load_path(reviews)  # offsets are into the review's text, front matter left out
    assert answer["text"] == "Elisabeth Shue" and answer["document_id"] == review.id
    assert review.text[answer["document_start"]:answer["document_end"]] == "Elisabeth Shue"
