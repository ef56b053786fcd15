"""Merging the helpers' film questions: offsets looked up, bad answers dropped, no set merged twice."""
from __future__ import annotations

import pytest

from benchmarks._common import read_jsonl, write_jsonl
from training.data.film_pool import merge

pytestmark = pytest.mark.unit


def test_merge_looks_up_offsets_and_drops_answers_not_in_the_review(tmp_path):
    text = "Al Pacino plays his youngest son, Michael. Nino Rota's score is haunting."
    write_jsonl(tmp_path / "set-50.jsonl", [{"review_id": "r1", "imdb_title": "tt1", "text": text}])
    write_jsonl(tmp_path / "out-50.jsonl", [
        {"review_id": "r1", "question": "who plays the youngest son", "answers": ["Al Pacino"], "kind": "cast"},
        {"review_id": "r1", "question": "who did the music", "answers": ["Ennio Morricone"], "kind": "crew"},
        {"review_id": "r1", "question": "how long is it", "answers": [], "kind": "unanswerable"},
    ])
    target = tmp_path / "film-questions.jsonl"
    write_jsonl(target, [{"id": "filmtrain-3-001", "question": "q", "review_id": "r0", "imdb_title": "tt0",
                          "answers": [], "kind": "unanswerable"}])

    merge(tmp_path, target)
    merge(tmp_path, target)  # a second merge of the same pool adds nothing

    rows = read_jsonl(target)
    assert [r["id"] for r in rows] == ["filmtrain-3-001", "filmtrain-50-001", "filmtrain-50-002"]
    cast = rows[1]
    assert cast["imdb_title"] == "tt1"
    assert text[cast["answers"][0]["start"]:cast["answers"][0]["end"]] == "Al Pacino"
    assert rows[2]["answers"] == [] and rows[2]["kind"] == "unanswerable"
