"""The store: add, update, delete, reopen, filters, model/schema mismatch, interrupted writes."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from qa.ingest.passages import split_document
from qa.schema import Document
from qa.stores.base import IndexUnavailable, Scope
from qa.stores.local import LocalStore, Update, current_generation, upgrade

DIM = 8
MODEL = "test-model"


def vec(seed: int, n: int = 1) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add(store: LocalStore, doc_id: str, text: str, film: str = "Film", seed: int = 0, **meta) -> None:
    doc = Document(id=doc_id, text=text, film=film, title=film, metadata=meta)
    passages = split_document(doc)
    store.add_document(doc, "/root", f"hash-{doc_id}-{seed}", passages, vec(seed, len(passages)))


@pytest.fixture
def index_dir(tmp_path):
    return tmp_path / "index"


def write(index_dir, *docs, rebuild=False, remove=()):
    update = Update(index_dir, MODEL, DIM, rebuild=rebuild)
    with update as store:
        for doc_id in remove:
            store.remove_document(doc_id)
        for args in docs:
            add(store, *args)
        return update.publish()


def test_add_reopen_and_read_back(index_dir):
    write(index_dir, ("a", "First para.\n\nSecond para.", "Alien", 1, ), ("b", "Only one.", "Jaws", 2))
    store = LocalStore.open(index_dir, MODEL)
    assert store.count_documents() == 2 and store.count_passages() == 3
    assert store.manifest.passages == 3 and store.vectors.ntotal == 3
    assert store.films() == [("Alien", 1), ("Jaws", 1)]
    assert [p.text for p in store.passages_of("a")] == ["First para.", "Second para."]
    assert store.document("b").text == "Only one."
    assert store.document("../etc/passwd") is None


def test_dense_search_finds_the_stored_vector(index_dir):
    write(index_dir, ("a", "Alpha.", "A", 1), ("b", "Beta.", "B", 2))
    store = LocalStore.open(index_dir, MODEL)
    [(pk, score)] = store.dense_search(vec(2)[0], 1)
    assert store.passages([pk])[pk].document_id == "b" and score == pytest.approx(1.0, abs=1e-5)


def test_a_served_index_maps_its_vectors_so_workers_share_them(index_dir):
    # Read-only, the vectors are a mapping of the generation's file (one copy in the page cache for
    # every worker process); an update reads them into memory, copies them and leaves the mapping alone.
    from pathlib import Path

    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("no /proc/self/maps on this system: cannot see which files are mapped")
    write(index_dir, ("a", "Alpha.", "A", 1), ("b", "Beta.", "B", 2))
    store = LocalStore.open(index_dir, MODEL)
    vectors_file = str(store.path / "vectors.faiss")
    assert vectors_file in maps.read_text()
    write(index_dir, ("c", "Gamma.", "C", 3))
    after = LocalStore.open(index_dir, MODEL)
    assert after.count_passages() == 3 and after.dense_search(vec(3)[0], 1)[0][1] == pytest.approx(1.0, abs=1e-5)
    [(pk, _)] = store.dense_search(vec(2)[0], 1)  # the old generation still answers from its mapping
    assert store.passages([pk])[pk].document_id == "b"


def test_update_and_delete_never_shift_other_ids(index_dir):
    write(index_dir, ("a", "Alpha.", "A", 1), ("b", "Beta.", "B", 2))
    before = LocalStore.open(index_dir, MODEL)
    [(pk_b, _)] = before.dense_search(vec(2)[0], 1)
    write(index_dir, ("a", "Alpha two.", "A", 3), remove=["a"])
    after = LocalStore.open(index_dir, MODEL)
    [(pk_b2, _)] = after.dense_search(vec(2)[0], 1)
    assert pk_b2 == pk_b
    assert after.document("a").text == "Alpha two."
    write(index_dir, remove=["a"])
    final = LocalStore.open(index_dir, MODEL)
    assert final.count_documents() == 1 and final.vectors.ntotal == 1
    assert final.keyword_search(["alpha"], 5) == []


def test_filters_by_film_document_and_metadata(index_dir):
    write(index_dir, ("a", "One.", "Alien", 1), ("b", "Two.", "Jaws", 2, ), ("c", "Three.", "Jaws", 3))
    store = LocalStore.open(index_dir, MODEL)
    ids = lambda f: sorted(store.passages(list(store.filter_passage_pks(f)))[pk].document_id  # noqa: E731
                           for pk in store.filter_passage_pks(f))
    assert ids({"film": "jaws"}) == ["b", "c"]  # case-insensitive
    assert ids({"film": ["Alien", "Jaws"], "document_id": "c"}) == ["c"]
    assert ids({"film": "Nope"}) == []
    [(pk, _)] = store.dense_search(vec(1)[0], 1, Scope({"film": "Jaws"}))[:1]
    assert store.passages([pk])[pk].film == "Jaws"  # the filter applies inside the search


def test_metadata_filter(index_dir):
    update = Update(index_dir, MODEL, DIM)
    with update as store:
        add(store, "a", "One.", "A", 1, year=1979)
        add(store, "b", "Two.", "B", 2, year=1975)
        update.publish()
    store = LocalStore.open(index_dir, MODEL)
    assert "year" in store.metadata_keys()
    pks = store.filter_passage_pks({"year": "1975"})
    assert [p.document_id for p in store.passages(list(pks)).values()] == ["b"]


def test_opening_with_another_model_says_so(index_dir):
    write(index_dir, ("a", "One.", "A", 1))
    with pytest.raises(IndexUnavailable, match="built with the embedding model 'test-model'.*rebuild"):
        LocalStore.open(index_dir, "other-model")


def test_opening_another_schema_version_says_so(index_dir):
    name = write(index_dir, ("a", "One.", "A", 1))
    manifest = index_dir / name / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "schema_version": 99}))
    with pytest.raises(IndexUnavailable, match="schema version 99.*rebuild"):
        LocalStore.open(index_dir, MODEL)


def doc_ids(store: LocalStore, query: str, scope: Scope = Scope()) -> list[str]:
    rows = {pk: doc_id for pk, doc_id in store.conn.execute("SELECT pk, id FROM documents")}
    return [rows[pk] for pk, _ in store.document_search(query.split(), 10, scope)]


def test_whole_documents_are_searched_and_kept_in_step_with_passages(index_dir):
    write(index_dir, ("a", "Quillon Harbour is slow.\n\nMaren Tobin plays the ferryman.", "", 1),
          ("b", "The ferryman again.", "", 2), ("c", "Nothing here.", "Jaws", 3))
    store = LocalStore.open(index_dir, MODEL)
    assert doc_ids(store, "quillon ferryman") == ["a", "b"]  # both paragraphs of "a" count
    assert store.keyword_search(["quillon", "ferryman"], 1) and len(store.passages_of("a")) == 2
    assert doc_ids(store, "jaws") == ["c"]  # the film is searched too, as in passages
    assert doc_ids(store, "ferryman", Scope({"document_id": "b"})) == ["b"]
    write(index_dir, ("a", "Now about a lighthouse.", "", 4), remove=["a", "c"])
    store = LocalStore.open(index_dir, MODEL)
    assert doc_ids(store, "quillon ferryman") == ["b"] and doc_ids(store, "lighthouse") == ["a"]
    assert doc_ids(store, "jaws") == []
    check = sqlite3.connect(store.path / "store.sqlite")  # the index agrees with documents.text
    check.execute("INSERT INTO documents_fts (documents_fts, rank) VALUES ('integrity-check', 1)")
    check.close()


def test_an_index_of_the_previous_schema_says_how_to_upgrade(index_dir, downgrade_to_schema_1):
    write(index_dir, ("a", "One.", "A", 1))
    downgrade_to_schema_1(index_dir)
    with pytest.raises(IndexUnavailable, match="schema version 1.*qa index --upgrade.*no re-embedding"):
        LocalStore.open(index_dir, MODEL)


def test_upgrade_adds_the_document_index_as_a_new_generation_keeping_the_vectors(index_dir, downgrade_to_schema_1):
    write(index_dir, ("a", "Quillon Harbour.\n\nThe ferryman.", "A", 1), ("b", "Beta.", "B", 2))
    old = downgrade_to_schema_1(index_dir)
    vectors = (index_dir / old / "vectors.faiss").read_bytes()
    new = upgrade(index_dir)
    assert new is not None and current_generation(index_dir) == new
    assert (index_dir / new / "vectors.faiss").read_bytes() == vectors  # not re-embedded, not rebuilt
    assert json.loads((index_dir / old / "manifest.json").read_text())["schema_version"] == 1  # left as it was
    store = LocalStore.open(index_dir, MODEL)
    assert store.manifest.schema_version == 2 and store.manifest.documents == 2
    assert doc_ids(store, "quillon ferryman") == ["a"]
    assert upgrade(index_dir) is None  # already up to date
    write(index_dir, remove=["a"])  # and it updates like any index
    assert doc_ids(LocalStore.open(index_dir, MODEL), "quillon ferryman") == []


def crash_an_update(index_dir, text: str) -> None:
    """An update that adds document "b" and then dies before publishing."""
    with pytest.raises(RuntimeError, match="crash"):
        with Update(index_dir, MODEL, DIM) as store:
            add(store, "b", text, "B", 2)
            raise RuntimeError("crash in the middle")


def test_an_update_of_an_older_index_upgrades_it_and_a_failed_one_leaves_it_alone(index_dir, downgrade_to_schema_1):
    write(index_dir, ("a", "Quillon Harbour.", "A", 1))
    old = downgrade_to_schema_1(index_dir)
    crash_an_update(index_dir, "The ferryman.")
    assert current_generation(index_dir) == old
    update = Update(index_dir, MODEL, DIM)
    with update as store:
        add(store, "b", "The ferryman.", "B", 2)
        update.publish()
    assert update.upgraded_from == 1
    assert sorted(doc_ids(LocalStore.open(index_dir, MODEL), "quillon ferryman")) == ["a", "b"]


def test_no_index_says_how_to_build_one(index_dir):
    with pytest.raises(IndexUnavailable, match="qa index"):
        LocalStore.open(index_dir)


def test_an_interrupted_update_leaves_the_previous_index_in_use(index_dir):
    write(index_dir, ("a", "One.", "A", 1))
    generation = current_generation(index_dir)
    crash_an_update(index_dir, "Two.")
    assert current_generation(index_dir) == generation
    store = LocalStore.open(index_dir, MODEL)
    assert store.count_documents() == 1
    assert not list(index_dir.glob("*.tmp*"))


def test_leftovers_of_a_killed_update_are_cleaned_and_ignored(index_dir):
    write(index_dir, ("a", "One.", "A", 1))
    (index_dir / "gen-000009.tmp-4242").mkdir()  # as left by a SIGKILL
    (index_dir / "gen-000009.tmp-4242" / "store.sqlite").write_bytes(b"half written")
    assert LocalStore.open(index_dir, MODEL).count_documents() == 1
    write(index_dir, ("b", "Two.", "B", 2))
    assert LocalStore.open(index_dir, MODEL).count_documents() == 2
    assert not list(index_dir.glob("*.tmp*"))


def test_a_damaged_index_file_gives_a_clear_error(index_dir):
    name = write(index_dir, ("a", "One.", "A", 1))
    (index_dir / name / "vectors.faiss").write_bytes(b"garbage")
    with pytest.raises(IndexUnavailable, match="damaged.*qa index --rebuild"):
        LocalStore.open(index_dir, MODEL)


def test_old_generations_are_removed_but_the_previous_one_kept(index_dir):
    for i in range(4):
        write(index_dir, (f"d{i}", f"Doc {i}.", "F", i))
    generations = sorted(p.name for p in index_dir.glob("gen-*"))
    assert generations == ["gen-000003", "gen-000004"]
    assert current_generation(index_dir) == "gen-000004"
