"""Retrieval: fusion, filters before ranking, film-aware boost, vector index type selection.

Most tests use a few hundred generated reviews and a deterministic bag-of-words
"embedder" (hashed word counts), so they need no model and run in a second or two;
the shipped documents (real model) check the film-aware boost end to end.
"""
from __future__ import annotations

import hashlib
import re

import faiss
import numpy as np
import pytest

from qa.retrieval.fusion import fuse, rrf
from qa.retrieval.search import named_film, retrieve
from qa.schema import Document, Passage
from qa.stores.base import Scope
from qa.stores.local import LocalStore, Update, VectorIndexConfig, current_generation
from qa.stores.local.vectors import EXACT_FILTER_MAX, choose_index_type

DIM = 64
MODEL = "test-model"
FIRST = ["Anna", "Boris", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas"]
LAST = ["Abbott", "Brandt", "Castell", "Dorsey", "Eklund", "Fontaine", "Gruber", "Hollis", "Ivers", "Janek"]
FILMS = [f"The {w} Affair" for w in ("Amber", "Bronze", "Cobalt", "Dusk", "Ember", "Frost", "Granite", "Harbor",
                                      "Ivory", "Jade", "Kestrel", "Lantern")]
ROLES = ["detective", "pilot", "singer", "doctor", "smuggler", "teacher", "sailor", "painter"]


def embed(texts: list[str]) -> np.ndarray:
    """A stand-in for the model: hashed word counts, L2-normalised (similar words, similar vectors)."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"\w+", text.lower()):
            out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def generated_reviews(n: int = 300) -> list[Document]:
    rng = np.random.default_rng(7)
    docs = []
    for i in range(n):
        film = FILMS[i % len(FILMS)]
        actor = f"{FIRST[rng.integers(10)]} {LAST[rng.integers(10)]}"
        role = ROLES[rng.integers(len(ROLES))]
        character = f"Char{i:03d}"
        text = (f"{film} is a slow thriller with a lot of atmosphere and a weak ending.\n\n"
                f"{actor} stars as {character}, a {role} who hides a secret. The photography is lovely "
                f"and the score is loud.\n\nI would watch it again for the cast, rating {i % 10 + 1}.")
        docs.append(Document(id=f"r{i:03d}", text=text, film=film, title=film,
                             metadata={"rating": str(i % 10 + 1), "split": "train" if i % 2 else "test"}))
    return docs


def build(index_dir, docs, config: VectorIndexConfig | None = None, remove=()) -> LocalStore:
    from qa.ingest.passages import split_document

    update = Update(index_dir, MODEL, DIM, vector_index=config)
    with update as store:
        for doc_id in remove:
            store.remove_document(doc_id)
        for doc in docs:
            passages = split_document(doc)
            store.add_document(doc, "/gen", f"h-{doc.id}", passages,
                               embed([f"{doc.title}. {p.text}" for p in passages]))
        update.publish()
    return LocalStore.open(index_dir, MODEL)


@pytest.fixture(scope="module")
def flat_store(tmp_path_factory) -> LocalStore:
    return build(tmp_path_factory.mktemp("flat") / "index", generated_reviews(), VectorIndexConfig(index_type="flat"))


@pytest.fixture(scope="module")
def hnsw_store(tmp_path_factory) -> LocalStore:
    return build(tmp_path_factory.mktemp("hnsw") / "index", generated_reviews(),
                 VectorIndexConfig(index_type="auto", hnsw_threshold=100))


# ----- fusion ------------------------------------------------------------------------------------

@pytest.mark.unit
def test_weighted_fusion_normalises_and_weights_each_list():
    dense = [(1, 0.9), (2, 0.45)]
    keyword = [(2, 10.0), (3, 5.0)]
    fused = dict(fuse(dense, keyword, dense_weight=0.5))
    assert fused[2] == pytest.approx((1.0 + 0.5 * 0.5) / 1.5)
    assert fused[1] == pytest.approx(0.5 / 1.5) and fused[3] == pytest.approx(0.5 / 1.5)
    assert [pk for pk, _ in fuse(dense, keyword, 0.5)][0] == 2
    assert fuse([], [], 0.3) == [] and dict(fuse([], keyword, 0.3))[2] == pytest.approx(1 / 1.3)


@pytest.mark.unit
def test_rrf_uses_ranks_only_and_first_in_both_lists_scores_one():
    dense = [(1, 0.99), (2, 0.98), (3, 0.1)]
    keyword = [(1, 50.0), (3, 49.0)]
    fused = rrf(dense, keyword, dense_weight=1.0, k=60)
    assert fused[0] == (1, pytest.approx(1.0))
    assert dict(fused)[3] > dict(fused)[2]  # in both lists beats one high rank in one list
    # scores themselves do not matter, only the order of each list
    assert rrf([(1, 5.0), (2, 4.0)], [], 1.0, 60) == rrf([(1, 0.2), (2, 0.1)], [], 1.0, 60)


def test_a_rare_name_is_found_by_keyword_and_hybrid(flat_store):
    question = "who plays Char123"
    for mode in ("keyword", "hybrid"):
        top = retrieve(flat_store, embed, question, 3, mode=mode)
        assert top[0].document_id == "r123", mode
    for fusion in ("weighted", "rrf"):
        assert retrieve(flat_store, embed, question, 3, fusion=fusion)[0].document_id == "r123"


# ----- filters -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_filters_apply_before_ranking_so_top_k_is_full(flat_store, mode):
    # the best passage for the question is excluded by the filter; a post-filter would return
    # fewer than k passages, a pre-filter returns k passages of the allowed film only
    question = "Char123 stars as a detective"
    film = FILMS[5]
    assert generated_reviews()[123].film != film
    got = retrieve(flat_store, embed, question, 5, {"film": film}, mode=mode)
    assert len(got) == 5 and all(p.film == film for p in got)
    got = retrieve(flat_store, embed, question, 5, {"rating": ["3", "4"], "split": "test"}, mode=mode)
    assert len(got) == 5
    docs = {d.id: d for d in generated_reviews()}
    assert all(docs[p.document_id].metadata["rating"] in ("3", "4") and docs[p.document_id].metadata["split"] == "test"
               for p in got)


def test_a_filter_matching_nothing_returns_nothing(flat_store):
    assert retrieve(flat_store, embed, "who plays Char001", 5, {"film": "No Such Film"}) == []


def test_filtered_dense_search_is_exact_on_hnsw(hnsw_store, flat_store):
    assert hnsw_store.index_type == "hnsw"
    scope = Scope({"film": FILMS[2]})
    query = embed(["a sailor who hides a secret"])[0]
    exact = flat_store.dense_search(query, 10, scope)
    assert hnsw_store.dense_search(query, 10, scope) == exact
    assert hnsw_store.count_passages(scope) <= EXACT_FILTER_MAX


# ----- film-aware --------------------------------------------------------------------------------

def test_named_film_is_found_by_its_words_not_by_scanning_titles(flat_store):
    assert named_film(flat_store, "who is the pilot in the cobalt affair?") == "The Cobalt Affair"
    assert named_film(flat_store, "who is the pilot in Cobalt Affair") == "The Cobalt Affair"
    assert named_film(flat_store, "who is the pilot?") is None


def test_a_film_named_in_the_question_boosts_that_films_passages(flat_store):
    question = "who plays the smuggler in The Kestrel Affair"
    boosted = retrieve(flat_store, embed, question, 5, film_boost=0.5)
    assert all(p.film == "The Kestrel Affair" for p in boosted)
    # an explicit film filter wins over the film named in the question
    filtered = retrieve(flat_store, embed, question, 5, {"film": FILMS[0]}, film_boost=0.5)
    assert all(p.film == FILMS[0] for p in filtered)


def test_film_boost_on_the_shipped_reviews(shipped_settings):
    from qa.answering.pipeline import Pipeline

    pipeline = Pipeline(shipped_settings)
    passages = pipeline.search("who directed Fargo?", top_k=3)
    assert passages[0].film == "Fargo"
    top = pipeline.search("who plays Sera?", top_k=3)
    assert top[0].id == "leaving-las-vegas#1"


# ----- document evidence -------------------------------------------------------------------------

QUESTION = "who plays the ferryman in quillon harbour"


def split_reviews() -> list[Document]:
    """One review names the film in one paragraph and answers in another; six others match half the question.

    No passage has all the question's words: passage by passage, the other reviews match better.
    No titles, as in the IMDB collection, so the film boost cannot help.
    """
    gold = Document(id="gold", text="Quillon Harbour is a strange little mystery about a lighthouse keeper.\n\n"
                                     "Maren Tobin plays the ferryman with quiet menace.")
    same_film = [Document(id=f"harbour{i}", text=f"Quillon Harbour bored me. Quillon Harbour is too long, {i} hours.")
                 for i in range(3)]
    same_role = [Document(id=f"ferry{i}", text=f"The ferryman plays dice: a ferryman film with a ferryman, take {i}.")
                 for i in range(3)]
    return [gold] + same_film + same_role


@pytest.fixture(scope="module")
def split_store(tmp_path_factory) -> LocalStore:
    return build(tmp_path_factory.mktemp("split") / "index", generated_reviews(60) + split_reviews(),
                 VectorIndexConfig(index_type="flat"))


def test_a_review_with_the_title_and_the_answer_in_different_paragraphs_ranks_first(split_store):
    without = retrieve(split_store, embed, QUESTION, 5, document_weight=0.0)
    assert "gold" not in {p.document_id for p in without}
    top = retrieve(split_store, embed, QUESTION, 5, document_weight=0.7)
    assert top[0].document_id == "gold" and top[0].text.startswith("Maren Tobin plays the ferryman")
    assert all(0.0 <= p.score <= 1.0 for p in top)


def test_the_passages_of_the_best_reviews_are_candidates_even_beyond_the_lists(split_store, monkeypatch):
    import qa.retrieval.search

    monkeypatch.setattr(qa.retrieval.search, "CANDIDATES", 2)  # both lists hold other reviews' passages only
    assert "gold" not in {p.document_id for p in retrieve(split_store, embed, QUESTION, 2, document_weight=0.0)}
    assert retrieve(split_store, embed, QUESTION, 2, document_weight=0.7)[0].document_id == "gold"


def test_document_evidence_respects_filters_and_is_hybrid_only(split_store):
    allowed = {"harbour0", "ferry1"}
    got = retrieve(split_store, embed, QUESTION, 5, {"document_id": sorted(allowed)}, document_weight=0.7)
    assert got and {p.document_id for p in got} <= allowed
    for mode in ("dense", "keyword"):
        assert (retrieve(split_store, embed, QUESTION, 5, mode=mode, document_weight=0.7)
                == retrieve(split_store, embed, QUESTION, 5, mode=mode, document_weight=0.0))


# ----- vector index type -------------------------------------------------------------------------

@pytest.mark.unit
def test_index_type_follows_the_collection_size():
    config = VectorIndexConfig(index_type="auto", hnsw_threshold=1000)
    assert choose_index_type(999, config) == "flat"
    assert choose_index_type(1000, config) == "hnsw"
    assert choose_index_type(10, VectorIndexConfig(index_type="hnsw")) == "hnsw"
    assert choose_index_type(10**7, VectorIndexConfig(index_type="flat")) == "flat"


def test_hnsw_is_published_with_its_search_depth_and_recall_matches_flat(hnsw_store, flat_store):
    assert hnsw_store.manifest.index_type == "hnsw" and hnsw_store.manifest.hnsw_ef_search > 0
    inner = faiss.downcast_index(faiss.downcast_index(hnsw_store.vectors).index)
    assert isinstance(inner, faiss.IndexHNSWFlat)
    assert flat_store.manifest.index_type == "flat"
    hits = total = 0
    for i in range(0, 300, 7):
        query = embed([f"Char{i:03d} stars as a {ROLES[i % len(ROLES)]}"])[0]
        exact = flat_store.dense_search(query, 10)
        approx = hnsw_store.dense_search(query, 10)
        # generated reviews repeat sentences, so vectors tie: count hits by score, not by id
        hits += sum(score >= exact[-1][1] - 1e-5 for _, score in approx)
        total += len(exact)
    assert hits / total >= 0.98


def test_an_hnsw_generation_can_be_updated_and_republished(tmp_path):
    docs = generated_reviews(150)
    index_dir = tmp_path / "index"
    config = VectorIndexConfig(index_type="auto", hnsw_threshold=300)
    first = build(index_dir, docs, config)
    assert first.index_type == "hnsw" and first.count_documents() == 150
    extra = [Document(id="new", text="Zelda Quark stars as Char999 in a brand new review.", film="New Film",
                      title="New Film")]
    second = build(index_dir, extra, config, remove=["r000", "r001"])
    assert current_generation(index_dir) != first.path.name
    assert second.count_documents() == 149 and second.vectors.ntotal == second.count_passages()
    assert second.index_type == "hnsw"
    assert retrieve(second, embed, "Zelda Quark", 1)[0].document_id == "new"
    assert all(p.document_id not in ("r000", "r001") for p in retrieve(second, embed, "Char000 Char001", 10))
    # below the threshold again -> flat
    third = build(index_dir, [], VectorIndexConfig(index_type="auto", hnsw_threshold=10**6))
    assert third.index_type == "flat" and third.vectors.ntotal == second.vectors.ntotal


def test_read_only_stores_cache_films_and_metadata_keys(flat_store):
    assert flat_store.read_only
    assert flat_store.films() is not flat_store.films()  # callers get their own copy
    assert flat_store.metadata_keys() == {"rating", "split"}
    assert "films" in flat_store._cache and "metadata_keys" in flat_store._cache


def test_retrieved_passages_keep_exact_offsets(flat_store):
    for p in retrieve(flat_store, embed, "who plays Char042", 5):
        assert isinstance(p, Passage)
        doc = flat_store.document(p.document_id)
        assert doc.text[p.document_start:p.document_end] == p.text
