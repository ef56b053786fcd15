"""Finding the passages most likely to answer a question.

Three modes (``Settings.retrieval``):

* ``dense``: FAISS inner product between the question's embedding and the
  passages' (title-prefixed) embeddings;
* ``keyword``: BM25 over passage text from SQLite FTS5, with down-weighted
  expansion words for the kind of question ("plays" -> "stars ... as");
* ``hybrid`` (default): both lists fused, by a weighted sum of their
  max-normalised scores (``fusion="weighted"``, ``dense_weight``) or by
  reciprocal rank fusion (``fusion="rrf"``, ``rrf_k``); keyword search catches
  rare names (characters, actors) that embeddings blur. Each passage then gets
  ``document_weight`` times its whole review's max-normalised BM25 for the
  question, and the passages of the best reviews by that BM25 are candidates
  too: a review often names the film in one paragraph and answers in another,
  so no single passage has all the question's words.

Filters are applied inside each search, before ranking, never afterwards.

Film-aware: when the request has no film filter and the question names a film
of the index (its title, matched like ``qa.retrieval.titles.find_film``), that
film's passages are searched too and get ``film_boost`` added to their score,
so they rank above other films' passages of similar relevance.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Literal

import numpy as np

from qa.retrieval.titles import find_title, title_index
from qa.schema import Passage
from qa.settings import Settings
from qa.retrieval.fusion import fuse, merge, normalise, rrf
from qa.retrieval.query import EXPANSIONS, WORD, document_terms, expansion_terms, passage_terms, stem
from qa.stores.base import EVERYTHING, Filters, Scope, Store

Mode = Literal["dense", "keyword", "hybrid"]
CANDIDATES = 50  # how deep each list is read before fusing
# Searches of one question run side by side (each waits on the store: SQLite and FAISS release the GIL,
# Milvus is a network round trip); tasks never wait on each other, so a full pool only queues.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="search")
DOCUMENT_CANDIDATES = 20  # reviews whose BM25 counts, and whose passages are all candidates


# The expansion bonus is at most this share of the best BM25 score for the question's own
# words: it reorders passages that match the question, it never outweighs a rare name.
EXPANSION_WEIGHT = 0.3


EXPANSION_WINDOW = 4  # expansion words count only this many words from a word of the question


def expansion_scores(store: Store, texts: dict[int, str], extra: str, question: str) -> dict[int, float]:
    """How strongly each candidate passage has expansion words next to the question's words.

    "who plays Sera?" is answered by "... Elisabeth Shue as Sera": an expansion word ("as",
    "stars", "role") within ``EXPANSION_WINDOW`` words of a question word ("Sera") counts,
    weighted by its rarity; the same word elsewhere in the passage does not. Computed in
    Python on the candidates only: searching FTS5 for words such as "stars" or "as" would
    score every passage that has them.
    """
    words = {stem(w) for w in extra.split()}
    anchors = {stem(t) for t in passage_terms(store, question)} - {stem(w) for w in EXPANSIONS} - words
    if not words or not anchors:
        return {}
    total = max(store.manifest.passages, 1)
    idf = {}
    for w in words:
        df = store.passages_with(w) if store.read_only else 0
        idf[w] = max(float(np.log(1 + (total - df + 0.5) / (df + 0.5))), 0.1)
    scores = {}
    for pk, text in texts.items():
        stems = [stem(t) for t in WORD.findall(text.lower())]
        near = [i for i, s in enumerate(stems) if s in anchors]
        if not near:
            continue
        counts: dict[str, int] = {}
        for i in near:
            for near_stem in stems[max(0, i - EXPANSION_WINDOW): i + EXPANSION_WINDOW + 1]:
                if near_stem in idf:
                    counts[near_stem] = counts.get(near_stem, 0) + 1
        if counts:
            scores[pk] = sum(idf[w] * c * (BM25_K1 + 1) / (c + BM25_K1) for w, c in counts.items())
    return scores


BM25_K1 = 1.2


def keyword_hits(store: Store, question: str, k: int, scope: Scope = EVERYTHING) -> list[tuple[int, float]]:
    """BM25 hits for the question's words, re-scored with down-weighted expansion words."""
    hits = store.keyword_search(passage_terms(store, question), k, scope)
    extra = expansion_terms(question)
    if not extra or not hits:
        return hits
    passages = store.passages([pk for pk, _ in hits])
    bonus = expansion_scores(store, {pk: p.text for pk, p in passages.items()}, extra, question)
    if not bonus:
        return hits
    scale = EXPANSION_WEIGHT * hits[0][1] / max(bonus.values())
    rescored = [(pk, score + scale * bonus.get(pk, 0.0)) for pk, score in hits]
    return sorted(rescored, key=lambda hit: -hit[1])


def document_scores(store: Store, question: str, scope: Scope = EVERYTHING) -> dict[int, float]:
    """document pk -> the whole document's BM25 for the question, max-normalised (0-1), best few only."""
    hits = store.document_search(document_terms(store, question), DOCUMENT_CANDIDATES, scope)
    top = max((score for _, score in hits), default=0.0)
    return {pk: max(score, 0.0) / top for pk, score in hits} if top > 0 else {}


def add_document_scores(owners: dict[int, tuple[int, str]], hits: list[tuple[int, float]],
                        documents: dict[int, float], weight: float) -> list[tuple[int, float]]:
    """Each passage's score plus ``weight`` times its document's score, rescaled to 0-1, best first.

    ``owners``: passage pk -> (document pk, film), from ``Store.owners``.
    """
    scored = ((pk, (score + weight * documents.get(owners.get(pk, (-1, ""))[0], 0.0)) / (1.0 + weight))
              for pk, score in hits)
    return sorted(scored, key=lambda hit: -hit[1])


ADMITTED_MAX = DOCUMENT_CANDIDATES * 50  # passages of the best reviews scored directly (50 a review)


def _admit(store: Store, question: str, query_vector: np.ndarray, admitted: Scope,
           dense: list[tuple[int, float]], keyword: list[tuple[int, float]]
           ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Both lists with every passage of the ``admitted`` reviews added, as each search scores it.

    The answer may sit in a passage of the best review that neither top-50 list reached
    (its words are in the review, not all in that passage); scoring these few passages
    directly costs two searches restricted to them. They are asked for ``ADMITTED_MAX``
    hits rather than counted first: a search returns only the passages in scope, and a count
    is one more round trip to Milvus.
    """
    pending = _POOL.submit(keyword_hits, store, question, ADMITTED_MAX, admitted)
    return (merge(dense, store.dense_search(query_vector, ADMITTED_MAX, admitted)), merge(keyword, pending.result()))


# ----- film-aware retrieval ---------------------------------------------------------------------

def named_film(store: Store, question: str) -> str | None:
    """The longest film title of the index named in the question, else None."""
    index = store.memo("title_index", lambda: title_index(tuple(title for title, _ in store.films())))
    return find_title(question, index)


_DEFAULTS = Settings.model_fields


def retrieve(
    store: Store,
    embed: Callable[[list[str]], np.ndarray],
    question: str,
    top_k: int,
    filters: Filters | None = None,
    mode: Mode = "hybrid",
    dense_weight: float = _DEFAULTS["dense_weight"].default,
    fusion: str = _DEFAULTS["fusion"].default,
    rrf_k: int = _DEFAULTS["rrf_k"].default,
    film_boost: float = _DEFAULTS["film_boost"].default,
    document_weight: float = _DEFAULTS["document_weight"].default,
) -> list[Passage]:
    """The ``top_k`` best passages for ``question``, best first, each with its ``score``."""
    scope = Scope(dict(filters or {}))
    film_scope: Scope | None = None
    film: str | None = None
    if film_boost > 0 and not (filters and {"film", "title", "document_id"} & set(filters)):
        film = named_film(store, question)
        if film is not None:
            film_scope = scope.with_filter("film", film)
    depth = max(top_k, CANDIDATES)
    use_documents = mode == "hybrid" and document_weight > 0

    # Every search that does not need another's result starts now, side by side.
    keyword_lists = []
    if mode in ("keyword", "hybrid"):
        keyword_lists = [_POOL.submit(keyword_hits, store, question, depth, s)
                         for s in (scope, film_scope) if s is not None]
    pending_documents = _POOL.submit(document_scores, store, question, scope) if use_documents else None
    query_vector = embed([question])[0] if mode in ("dense", "hybrid") else None
    dense: list[tuple[int, float]] = []
    if query_vector is not None:
        dense_k = depth if mode == "hybrid" or film_scope is not None else top_k
        film_dense = (_POOL.submit(store.dense_search, query_vector, depth, film_scope)
                      if film_scope is not None else None)
        dense = store.dense_search(query_vector, dense_k, scope)
        if film_dense is not None:
            dense = merge(dense, film_dense.result())
    keyword: list[tuple[int, float]] = []
    for pending in keyword_lists:
        keyword = merge(keyword, pending.result())
    documents: dict[int, float] = {}
    if pending_documents is not None:
        documents = pending_documents.result()
        if documents and query_vector is not None:
            dense, keyword = _admit(store, question, query_vector, scope.among(list(documents)), dense, keyword)
    if mode == "dense":
        hits = dense
    elif mode == "keyword":
        hits = keyword
    elif fusion == "rrf":
        hits = rrf(dense, keyword, dense_weight, rrf_k)
    else:
        hits = fuse(dense, keyword, dense_weight)
    owners = store.owners([pk for pk, _ in hits]) if documents or film_scope is not None else {}
    if documents:
        hits = add_document_scores(owners, hits, documents, document_weight)
    if film_scope is not None and film is not None:
        named = film.casefold()
        hits = sorted(((pk, (score + (film_boost if owners.get(pk, (0, ""))[1].casefold() == named else 0.0))
                        / (1.0 + film_boost))
                       for pk, score in (hits if mode == "hybrid" else normalise(hits))),
                      key=lambda hit: -hit[1])
    hits = hits[:top_k]
    passages = store.passages([pk for pk, _ in hits])
    return [replace(passages[pk], score=round(float(score), 4)) for pk, score in hits if pk in passages]


def retrieve_with(settings: Settings, store: Store, embed: Callable[[list[str]], np.ndarray], question: str,
                  top_k: int | None = None, filters: Filters | None = None) -> list[Passage]:
    """``retrieve`` configured by ``settings``."""
    return retrieve(store, embed, question, top_k or settings.top_k, filters, settings.retrieval,
                    settings.dense_weight, settings.fusion, settings.rrf_k, settings.film_boost,
                    settings.document_weight)
