"""Query analysis, in one place: which words of a question are searched, and which words are added.

* ``content_words``: lower case, no stopwords, no single letters;
* ``passage_terms`` / ``document_terms``: without the words so common in the store that BM25
  gains nothing from them but scores most of the collection (the rarest word always stays);
* ``expansion_terms``: review words that answer a kind of question ("who plays" -> "stars as").
"""
from __future__ import annotations

import functools
import re
from typing import Callable

from qa.stores.base import Store

# Question words that carry no topic; left out of keyword queries.
STOPWORDS = frozenset("""a an and are as at be by did do does for from had has have he her his how in is it its
of on or she that the their them they this to was were what when where which who whom whose why will with
you your movie film""".split())

# Keyword queries leave out words found in more passages than this share (or count), see passage_terms
COMMON_TERM_FRACTION = 0.02
COMMON_TERM_MIN = 2_000
# Document (whole review) queries leave out words found in more than this share of documents, see document_terms
DOCUMENT_COMMON_FRACTION = 0.2


def content_words(query: str) -> list[str]:
    """The distinct words of ``query`` that can be searched: lower case, no stopwords, no single letters."""
    return list(dict.fromkeys(t for t in re.findall(r"\w+", query.lower()) if len(t) > 1 and t not in STOPWORDS))


def drop_common(terms: list[str], total: int, fraction: float, frequency: Callable[[str], int]) -> list[str]:
    """``terms`` without those in more than ``max(fraction * total, COMMON_TERM_MIN)`` rows, keeping the rarest.

    Collections of at most ``COMMON_TERM_MIN`` rows keep every term: they are cheap to score.
    """
    if len(terms) < 2 or total <= COMMON_TERM_MIN:
        return terms
    limit = max(fraction * total, COMMON_TERM_MIN)
    counts = {t: frequency(t) for t in terms}
    kept = [t for t in terms if counts[t] <= limit]
    return kept or [min(terms, key=lambda t: counts[t])]


def passage_terms(store: Store, query: str) -> list[str]:
    """The words of ``query`` that are searched in passages: no stopwords, and no very common words.

    A word in more than ``max(COMMON_TERM_FRACTION * passages, COMMON_TERM_MIN)`` passages
    adds almost nothing to BM25 but makes FTS5 score every passage that has it; it is left
    out as long as a rarer word remains (the rarest word is always kept).
    """
    total = store.manifest.passages if store.read_only else store.count_passages()
    return drop_common(content_words(query), total, COMMON_TERM_FRACTION, store.passages_with)


def document_terms(store: Store, query: str) -> list[str]:
    """The words of ``query`` searched in whole documents: looser than ``passage_terms``.

    In a whole review, a fairly common word of the question ("directed", "set", "novel")
    next to the title's words is what tells the review that answers apart from the other
    reviews of the same film, so only words in more than ``DOCUMENT_COMMON_FRACTION`` of the
    documents (which would make FTS5 score most of them) are left out.
    """
    total = store.manifest.documents if store.read_only else store.count_documents()
    return drop_common(content_words(query), total, DOCUMENT_COMMON_FRACTION, store.documents_with)


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


def expansion_terms(question: str) -> str:
    """Review words that usually answer this kind of question ('' when none apply)."""
    words = re.findall(r"\w+", question.lower())
    return " ".join(EXPANSIONS[w] for w in words if w in EXPANSIONS)


WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A crude suffix stripper (stars, starring -> star; directed -> direct), used on both sides."""
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if suffix in ("ing", "ed") and len(word) > 3 and word[-1] == word[-2]:
                word = word[:-1]  # starring -> starr -> star
            break
    return word
