"""Fusing ranked lists of ``(pk, score)`` hits into one, best first."""
from __future__ import annotations

Hits = list[tuple[int, float]]


def fuse(dense: Hits, keyword: Hits,
         dense_weight: float) -> Hits:
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


def rrf(dense: Hits, keyword: Hits, dense_weight: float = 1.0,
        k: int = 60) -> Hits:
    """Reciprocal rank fusion: sum of ``weight / (k + rank)``, scaled so first in both lists is 1.0."""
    scores: dict[int, float] = {}
    for hits, weight in ((keyword, 1.0), (dense, dense_weight)):
        for rank, (pk, _) in enumerate(hits, start=1):
            scores[pk] = scores.get(pk, 0.0) + weight / (k + rank)
    best = (1.0 + dense_weight) / (k + 1)
    return sorted(((pk, s / best) for pk, s in scores.items()), key=lambda hit: -hit[1])


def normalise(hits: Hits) -> Hits:
    top = max((score for _, score in hits), default=0.0)
    return [(pk, max(score, 0.0) / top) for pk, score in hits] if top > 0 else hits


def merge(*lists: Hits) -> Hits:
    """One list with each pk's best score, best first."""
    scores: dict[int, float] = {}
    for hits in lists:
        for pk, score in hits:
            if score > scores.get(pk, float("-inf")):
                scores[pk] = score
    return sorted(scores.items(), key=lambda hit: -hit[1])
