"""Indexing: incremental updates by content hash, removals, and bad input that never loses stored work."""
from __future__ import annotations

import json
import shutil

import pytest

from qa.ingest.indexer import index_paths
from qa.settings import Settings
from qa.stores.local import LocalStore, current_generation


@pytest.fixture
def reviews(tmp_path):
    folder = tmp_path / "reviews"
    folder.mkdir()
    (folder / "alien.md").write_text("---\ntitle: Alien\n---\nSigourney Weaver plays Ripley.\n\nSet aboard the Nostromo.")
    (folder / "jaws.md").write_text("---\ntitle: Jaws\n---\nRobert Shaw plays Quint.")
    return folder


def test_first_run_adds_everything(reviews, settings):
    report = index_paths([reviews], settings)
    assert (report.added, report.passages_embedded, report.problems) == (2, 3, [])
    assert LocalStore.open(settings.index_dir).count_passages() == 3


def test_unchanged_collection_embeds_nothing_and_keeps_the_generation(reviews, settings):
    index_paths([reviews], settings)
    generation = current_generation(settings.index_dir)
    report = index_paths([reviews], settings)
    assert (report.unchanged, report.passages_embedded, report.changed) == (2, 0, False)
    assert current_generation(settings.index_dir) == generation


def test_an_index_of_the_previous_schema_is_upgraded_by_the_next_run(reviews, settings, downgrade_to_schema_1):
    index_paths([reviews], settings)
    old = downgrade_to_schema_1(settings.index_dir)
    report = index_paths([reviews], settings)
    assert (report.unchanged, report.passages_embedded, report.upgraded_from) == (2, 0, 1)
    assert report.generation is not None and current_generation(settings.index_dir) != old
    store = LocalStore.open(settings.index_dir)
    assert store.manifest.schema_version == 2 and len(store.document_search(["ripley", "nostromo"], 5)) == 1


def test_changed_document_is_reembedded_and_removed_one_dropped(reviews, settings):
    index_paths([reviews], settings)
    (reviews / "jaws.md").write_text("---\ntitle: Jaws\n---\nRoy Scheider plays Brody.")
    (reviews / "alien.md").unlink()
    report = index_paths([reviews], settings)
    assert (report.added, report.updated, report.removed, report.passages_embedded) == (0, 1, 1, 1)
    store = LocalStore.open(settings.index_dir)
    assert [d for d, _ in store.films()] == ["Jaws"]
    assert "Brody" in store.document("jaws").text


def test_indexing_another_path_keeps_the_first(reviews, settings, tmp_path):
    index_paths([reviews], settings)
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "r1", "text": "Fargo is set in Minnesota.", "film": "Fargo"}) + "\n")
    report = index_paths([extra], settings)
    assert (report.added, report.removed) == (1, 0)
    assert LocalStore.open(settings.index_dir).count_documents() == 3


def test_a_file_that_becomes_unreadable_keeps_its_stored_documents(reviews, settings):
    index_paths([reviews], settings)
    (reviews / "jaws.md").write_bytes(b"\xff\xfe broken encoding")
    report = index_paths([reviews], settings)
    assert report.removed == 0 and any("not valid UTF-8" in str(p) for p in report.problems)
    assert LocalStore.open(settings.index_dir).document("jaws") is not None


def test_a_missing_folder_removes_nothing(reviews, settings, tmp_path):
    index_paths([reviews], settings)
    moved = tmp_path / "moved"
    shutil.move(reviews, moved)
    report = index_paths([reviews], settings)
    assert report.removed == 0 and "no such file or folder" in str(report.problems[0])
    assert LocalStore.open(settings.index_dir).count_documents() == 2


def test_rebuild_reembeds_everything(reviews, settings):
    index_paths([reviews], settings)
    report = index_paths([reviews], settings, rebuild=True)
    assert report.added == 2 and report.passages_embedded == 3


def test_changing_the_passage_size_reembeds(reviews, settings):
    index_paths([reviews], settings)
    report = index_paths([reviews], Settings(index_dir=settings.index_dir, max_passage_words=50))
    assert report.updated == 2


def test_a_file_that_vanishes_mid_run_is_reported_and_the_rest_indexed(reviews, settings, monkeypatch):
    import qa.ingest.loaders

    real = qa.ingest.loaders.find_files
    monkeypatch.setattr(qa.ingest.loaders, "find_files",
                        lambda root, report: [*real(root, report), root / "vanished.md"])
    report = index_paths([reviews], settings)
    assert report.added == 2
    assert any("vanished.md" in str(p) and "disappeared" in str(p) for p in report.problems)


def test_a_huge_single_paragraph_is_indexed_in_windows(settings, tmp_path):
    folder = tmp_path / "huge"
    folder.mkdir()
    (folder / "wall.md").write_text("---\ntitle: Wall\n---\n" + "This sentence goes on. " * 3000)
    report = index_paths([folder], settings)
    store = LocalStore.open(settings.index_dir)
    assert report.added == 1 and store.count_passages() >= 3000 * 4 // 200


def test_chunks_embedded_while_the_next_is_cut_keep_every_vector_with_its_passage(settings, tmp_path, monkeypatch):
    # Chunks of 2 reviews: the worker embeds one chunk while the next is cut and the previous stored.
    monkeypatch.setattr("qa.ingest.indexer.CHUNK_DOCUMENTS", 2)
    films = ["Alien", "Jaws", "Heat", "Fargo", "Brazil", "Vertigo", "Psycho"]
    lines = [json.dumps({"id": f.lower(), "title": f, "text": f"{f} is a film about {f.lower()} and nothing else."})
             for f in films]
    (tmp_path / "films.jsonl").write_text("\n".join(lines) + "\n")
    report = index_paths([tmp_path / "films.jsonl"], settings)
    assert (report.added, report.passages_embedded) == (7, 7)
    store = LocalStore.open(settings.index_dir)
    from qa.embedding.base import passage_text_for_embedding
    from qa.embedding.loading import embedder_for

    for film in films:
        (passage,) = store.passages_of(film.lower())
        query = embedder_for(settings).encode([passage_text_for_embedding(passage.text, passage.title)])[0]
        best_pk, score = store.dense_search(query, 1)[0]
        assert store.passages([best_pk])[best_pk].document_id == film.lower() and score > 0.95  # int8: batch mates move it a little
