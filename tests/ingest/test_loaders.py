"""Loading reviews: formats, ids, titles, field mapping, and bad input reported with file and line."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from qa.ingest.loaders import FieldMap, Problem, load_path
import pytest

pytestmark = pytest.mark.unit


def load(root: Path, fields: FieldMap = FieldMap()):
    problems: list[Problem] = []
    docs = list(load_path(root, fields, problems.append))
    return docs, problems


def test_markdown_front_matter_gives_title_and_metadata(tmp_path):
    (tmp_path / "reviews").mkdir()
    (tmp_path / "reviews" / "fargo.md").write_text(
        "---\ntitle: Fargo\nyear: 1996\ndirector: Joel Coen\n---\nFargo (1996)\n\nFrances McDormand plays Marge.\n")
    docs, problems = load(tmp_path / "reviews")
    assert problems == []
    [doc] = docs
    assert doc.id == "fargo"
    assert doc.film == doc.title == "Fargo"
    assert doc.metadata == {"year": 1996, "director": "Joel Coen"}
    assert doc.text.startswith("Fargo (1996)")


def test_title_from_heading_then_file_name_and_nested_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "jaws.txt").write_text("# Jaws\n\nRoy Scheider plays Brody.")
    (tmp_path / "the-big-sleep.md").write_text("Bogart is Marlowe.")
    docs, _ = load(tmp_path)
    by_id = {d.id: d for d in docs}
    assert by_id["a/jaws"].title == "Jaws"
    assert by_id["the-big-sleep"].title == "The Big Sleep"


def test_jsonl_and_gzip_with_field_mapping(tmp_path):
    rows = [{"review_id": "r1", "review": "Great film.", "item": "Alien", "stars": 5},
            {"review_id": "r2", "review": "Dull.", "item": "Jaws"}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"review_id": "r3", "review": "Scary.", "item": "Alien"}) + "\n")
    docs, problems = load(tmp_path, FieldMap(id="review_id", text="review", film="item"))
    assert problems == []
    assert [(d.id, d.film, d.text) for d in docs] == [
        ("r1", "Alien", "Great film."), ("r2", "Jaws", "Dull."), ("r3", "Alien", "Scary.")]
    assert docs[0].metadata == {"stars": 5}


def test_jsonl_without_id_gets_file_and_line(tmp_path):
    (tmp_path / "reviews.jsonl").write_text('{"text": "one"}\n{"text": "two"}\n')
    docs, _ = load(tmp_path / "reviews.jsonl")
    assert [d.id for d in docs] == ["reviews:1", "reviews:2"]


def test_csv_with_header(tmp_path):
    (tmp_path / "r.csv").write_text('id,text,film\n1,"Tense, and funny.",Fargo\n2,Moving.,Casablanca\n')
    docs, problems = load(tmp_path)
    assert problems == []
    assert [(d.id, d.film, d.text) for d in docs] == [("1", "Fargo", "Tense, and funny."), ("2", "Casablanca", "Moving.")]


def test_bad_input_is_reported_with_file_and_line_and_the_rest_loads(tmp_path):
    (tmp_path / "good.md").write_text("A fine review.")
    (tmp_path / "latin1.txt").write_bytes("Am\xe9lie".encode("latin-1"))
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty.md").write_text("   \n")
    (tmp_path / "rows.jsonl").write_text(
        '{"id": "ok", "text": "Fine."}\n{broken json\n{"id": "x"}\n[1, 2]\n{"id": "ok", "text": "Again."}\n')
    (tmp_path / "rows.csv").write_text("id,review\n1,hello\n")
    (tmp_path / "bad-yaml.md").write_text("---\ntitle: [unclosed\n---\nStill a review.")
    docs, problems = load(tmp_path)
    assert sorted(d.id for d in docs) == ["bad-yaml", "good", "ok"]
    messages = [str(p) for p in problems]
    expected = [
        ("latin1.txt", "not valid UTF-8"),
        ("binary.md", "binary"),
        ("empty.md", "empty"),
        ("rows.jsonl:2", "not valid JSON"),
        ("rows.jsonl:3", "'text' is missing"),
        ("rows.jsonl:4", "not a JSON object"),
        ("rows.jsonl:5", "duplicate document id 'ok'"),
        ("rows.csv", "no 'text' column"),
        ("bad-yaml.md", "front matter is not valid YAML"),
    ]
    for where, what in expected:
        assert any(where in m and what in m for m in messages), (where, what, messages)


def test_missing_path_and_unsupported_file_are_reported(tmp_path):
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    _, problems = load(tmp_path / "nowhere")
    assert "no such file or folder" in str(problems[0])
    _, problems = load(tmp_path / "notes.pdf")
    assert "unsupported file type" in str(problems[0])
