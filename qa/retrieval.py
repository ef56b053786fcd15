"""Finding the passages most likely to answer a question.

Three modes (``Settings.retrieval``):

* ``dense``: FAISS inner product between the question's embedding and the
  passages' (title-prefixed) embeddings;
* ``keyword``: BM25 over passage text from SQLite FTS5;
* ``hybrid`` (default): both lists fused by a weighted sum of their
  normalised scores; keyword search catches rare names (characters,
  actors) that embeddings blur.

Filters are applied inside each search, before ranking, never afterwards.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable, Literal

import numpy as np

from qa.schema import Passage
from qa.store import Filters, Store

Mode = Literal["dense", "keyword", "hybrid"]
CANDIDATES = 50  # how deep each list is read before fusing


# Words reviews use for what a question asks about: "who plays Sera?" is answered by
# "... stars Elisabeth Shue as Sera". Added to the keyword query only.
EXPANSIONS = {
    "play": "stars starring as portrays role cast",
    "plays": "stars starring as portrays role cast",
    "played": "stars starring as portrayed role cast",
    "actor": "stars starring plays cast",
    "actress": "stars starring plays cast",
    "directed": "director directs film by",
    "director": "directed directs by",
    "wrote": "written writer screenplay novel by",
    "based": "adapted novel book source",
    "set": "takes place setting in",
    "composed": "score music composer",
    "score": "composed music composer",
    "year": "released",
    "when": "released year",
}


# The expansion bonus is at most this share of the best BM25 score for the question's own
# words: it reorders passages that match the question, it never outweighs a rare name.
EXPANSION_WEIGHT = 0.3


def expansion_terms(question: str) -> str:
    """Review words that usually answer this kind of question ('' when none apply)."""
    words = re.findall(r"\w+", question.lower())
    return " ".join(EXPANSIONS[w] for w in words if w in EXPANSIONS)


def keyword_hits(store: Store, question: str, k: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
    """BM25 hits for the question's words, re-scored with down-weighted expansion words."""
    hits = store.keyword_search(question, k, allowed)
    extra = expansion_terms(question)
    if not extra or not hits:
        return hits
    bonus = dict(store.keyword_search(extra, len(hits), np.array([pk for pk, _ in hits], dtype=np.int64)))
    if not bonus:
        return hits
    scale = EXPANSION_WEIGHT * hits[0][1] / max(bonus.values())
    rescored = [(pk, score + scale * bonus.get(pk, 0.0)) for pk, score in hits]
    return sorted(rescored, key=lambda hit: -hit[1])


def fuse(dense: list[tuple[int, float]], keyword: list[tuple[int, float]],
         dense_weight: float) -> list[tuple[int, float]]:
    """Weighted sum of max-normalised scores; a passage missing from a list gets 0 there.

    Normalised to [0, 1]: first in both lists with the top score gives 1.0.
    """
    scores: dict[int, float] = {}
    for hits, weight in ((keyword, 1.0), (dense, dense_weight)):
        top = max((score for _, score in hits), default=0.0)
        if top <= 0:
            continue
        for pk, score in hits:
            scores[pk] = scores.get(pk, 0.0) + weight * max(score, 0.0) / top
    total = 1.0 + dense_weight
    return sorted(((pk, s / total) for pk, s in scores.items()), key=lambda hit: -hit[1])


def retrieve(
    store: Store,
    embed: Callable[[list[str]], np.ndarray],
    question: str,
    top_k: int,
    filters: Filters | None = None,
    mode: Mode = "hybrid",
    dense_weight: float = 1.0,
) -> list[Passage]:
    """The ``top_k`` best passages for ``question``, best first, each with its ``score``."""
    allowed = store.filter_passage_pks(filters) if filters else None
    if allowed is not None and len(allowed) == 0:
        return []
    depth = max(top_k, CANDIDATES)
    if mode == "dense":
        hits = store.dense_search(embed([question])[0], top_k, allowed)
    elif mode == "keyword":
        hits = keyword_hits(store, question, depth, allowed)
    else:
        dense = store.dense_search(embed([question])[0], depth, allowed)
        keyword = keyword_hits(store, question, depth, allowed)
        hits = fuse(dense, keyword, dense_weight)
    hits = hits[:top_k]
    passages = store.passages([pk for pk, _ in hits])
    return [replace(passages[pk], score=round(float(score), 4)) for pk, score in hits if pk in passages]
