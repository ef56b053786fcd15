"""Film titles named in a text: "who plays Sera in leaving las vegas" names Leaving Las Vegas.

Titles are compared normalised (case, accents, punctuation and a leading "The"
forgiven); a text is scanned for runs of its words that are a known title, the
longest winning. Retrieval uses it to favour the named film; the conversation
uses it to know which film a question is about.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

_NON_WORD = re.compile(r"[^\w\s]")
_MIN_TITLE_CHARS = 3  # generic one- or two-letter titles never count as named


def _fold(text: str) -> str:
    """Accents removed character by character, so offsets into the result are offsets into ``text``."""
    out = []
    for c in text:
        base = "".join(b for b in unicodedata.normalize("NFKD", c) if not unicodedata.combining(b))
        out.append(base if len(base) == 1 else c)
    return "".join(out)


def normalize_title(text: str) -> str:
    """Lower case, accents and punctuation removed, a leading 'the' dropped, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().replace("&", " and ")
    text = " ".join(_NON_WORD.sub(" ", text).split())
    return text[4:] if text.startswith("the ") else text


@dataclass(frozen=True)
class TitleIndex:
    """Normalised title -> title, to find named films by looking up runs of a text's words."""

    by_key: dict[str, str]
    max_words: int


@lru_cache(maxsize=8)
def title_index(titles: tuple[str, ...]) -> TitleIndex:
    """The index of ``titles`` (built once per distinct list: per index generation in practice)."""
    by_key: dict[str, str] = {}
    for title in titles:
        key = normalize_title(title)
        if len(key) >= _MIN_TITLE_CHARS:
            by_key.setdefault(key, title)
    return TitleIndex(by_key, max((len(k.split()) for k in by_key), default=0))


def find_title(text: str, index: TitleIndex) -> str | None:
    """The longest indexed title named in ``text``; the cost grows with the text, not the titles."""
    words = normalize_title(text).split()
    best, best_len = None, 0
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + index.max_words) + 1):
            key = " ".join(words[i:j])
            if len(key) > best_len and key in index.by_key:
                best, best_len = index.by_key[key], len(key)
    return best


def find_film(text: str, titles: Iterable[str]) -> str | None:
    """The longest known title named in ``text`` (case, punctuation, a missing 'The' forgiven)."""
    return find_title(text, title_index(tuple(titles)))


def title_span(text: str, title: str) -> tuple[int, int] | None:
    """Where ``title`` is named in ``text`` (as ``find_film`` matches it), or None."""
    words = normalize_title(title).split()
    if not words:
        return None
    pattern = r"(?<!\w)(?:the\s+)?" + r"[\W_]+".join(re.escape(w) for w in words) + r"(?!\w)"
    match = re.search(pattern, _fold(text).replace("&", "and"), re.IGNORECASE)
    return match.span() if match else None
