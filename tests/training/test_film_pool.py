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


def test_draw_writes_only_the_sets_it_can_fill_and_says_the_pool_is_short(tmp_path, monkeypatch, capsys):
    import training.data.film_pool as film_pool

    names = "Al Pacino, Diane Keaton, James Caan and Robert Duvall star. "
    reviews = [{"id": f"r{i}", "imdb_title": f"tt{i}", "text": names * 20} for i in range(3)]
    reviews.append({"id": "r9", "imdb_title": "tt9", "text": "no names here at all. " * 60})
    reviews.append({"id": "r8", "imdb_title": "tt0", "text": names * 20})  # a second review of tt0
    questions = tmp_path / "film-questions.jsonl"
    write_jsonl(questions, [{"id": "filmtrain-7-001", "imdb_title": "tt-old"}])
    write_jsonl(tmp_path / "imdb-questions.jsonl", [])
    monkeypatch.setattr(film_pool, "FILM_QUESTIONS", questions)
    monkeypatch.setattr(film_pool, "IMDB_QUESTIONS", tmp_path / "imdb-questions.jsonl")
    monkeypatch.setattr(film_pool, "imdb_reviews", lambda: iter(reviews))
    monkeypatch.setattr(film_pool, "shipped_names", set)

    film_pool.draw(tmp_path / "pool", sets=3, per_set=2, min_chars=700, max_chars=4000, min_names=4)

    assert sorted(p.name for p in (tmp_path / "pool").iterdir()) == ["set-8.jsonl", "set-9.jsonl"]
    drawn = [r["imdb_title"] for n in (8, 9) for r in read_jsonl(tmp_path / "pool" / f"set-{n}.jsonl")]
    assert sorted(drawn) == ["tt0", "tt1", "tt2"]
    assert "only 3 reviews qualify, not 6" in capsys.readouterr().err
