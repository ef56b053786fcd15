"""The natural question sets in ``benchmarks/natural/``: well-formed, answers where their offsets say."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._common import IMDB_REVIEWS, imdb_texts, read_jsonl
from benchmarks.natural.add_written import FRONT_MATTER, KINDS, split_of

ROOT = Path(__file__).resolve().parents[1]
NATURAL = ROOT / "benchmarks" / "natural"


def _check_rows(rows: list[dict], kinds: set[str]) -> None:
    assert len({r["id"] for r in rows}) == len(rows), "question ids are unique"
    for r in rows:
        assert r["kind"] in kinds, r["id"]
        assert r["split"] in ("dev", "test"), r["id"]
        assert bool(r["answers"]) != (r["kind"] == "unanswerable"), r["id"]
        assert r["question"].strip(), r["id"]


@pytest.mark.unit
def test_documents_questions_point_into_the_review_bodies():
    rows = read_jsonl(NATURAL / "documents.jsonl")
    _check_rows(rows, KINDS["documents"])
    for r in rows:
        text = (ROOT / "documents" / f"{r['review_id']}.md").read_text(encoding="utf-8")
        body_start = FRONT_MATTER.match(text).end()
        for a in r["answers"]:
            assert text[a["start"]:a["end"]] == a["text"], r["id"]
            assert a["start"] >= body_start, f"{r['id']}: the answer is in the front matter"
        if r["id"].startswith("docs-c-"):  # added by add_written.py, whose split rule this is
            assert r["split"] == split_of(r["id"])


@pytest.mark.unit
def test_no_film_is_in_both_halves_of_the_imdb_questions():
    rows = read_jsonl(NATURAL / "imdb.jsonl")
    _check_rows(rows, KINDS["imdb"])
    halves: dict[str, set[str]] = {}
    for r in rows:
        halves.setdefault(r["imdb_title"], set()).add(r["split"])
    assert all(len(s) == 1 for s in halves.values())


@pytest.mark.skipif(not IMDB_REVIEWS.exists(), reason=f"needs the shared IMDB reviews ({IMDB_REVIEWS})")
def test_imdb_questions_point_into_their_reviews():
    rows = read_jsonl(NATURAL / "imdb.jsonl")
    texts = imdb_texts({r["review_id"] for r in rows})
    for r in rows:
        for a in r["answers"]:
            assert texts[r["review_id"]][a["start"]:a["end"]] == a["text"], json.dumps(r)
