"""Follow-up questions: which film a question is about, and what it means in context.

The film in focus is the film named in the question, else the one the last
turns of the conversation were about (a turn's ``film``, or a title named in
its question or answer). A follow-up about the film in focus is rewritten so
that it stands alone: pronouns and phrases such as "it", "the film", "that
movie" become the title, and a question that names no film gets "in <title>".
The film in focus also becomes a ``film`` filter unless the request already
filters by film. All the state travels in the request's ``history``.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

_REFERENCE = re.compile(
    r"\b(?:(?:the|that|this)\s+(?:film|movie|picture|one)|it|its)\b", re.IGNORECASE)
_NON_WORD = re.compile(r"[^\w\s]")
# Questions whose "it" is not a film ("is it worth it?" still is); generic words never count as a title
_MIN_TITLE_CHARS = 3


@dataclass(frozen=True)
class Resolved:
    question: str
    film: str | None
    filters: dict[str, Any] | None


def normalize_title(text: str) -> str:
    """Lower case, accents and punctuation removed, a leading 'the' dropped, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().replace("&", " and ")
    text = " ".join(_NON_WORD.sub(" ", text).split())
    return text[4:] if text.startswith("the ") else text


def find_film(text: str, titles: Iterable[str]) -> str | None:
    """The longest known title named in ``text`` (case, punctuation, a missing 'The' forgiven)."""
    haystack = f" {normalize_title(text)} "
    best: tuple[int, str] | None = None
    for title in titles:
        needle = normalize_title(title)
        if len(needle) < _MIN_TITLE_CHARS:
            continue
        if f" {needle} " in haystack and (best is None or len(needle) > best[0]):
            best = (len(needle), title)
    return best[1] if best else None


def film_in_focus(history: Sequence[Mapping[str, Any]], titles: Sequence[str]) -> str | None:
    """The film the conversation was last about, newest turn first."""
    for turn in reversed(history):
        if turn.get("film") and find_film(str(turn["film"]), titles):
            return find_film(str(turn["film"]), titles)
        for key in ("question", "answer"):
            film = find_film(str(turn.get(key) or ""), titles)
            if film:
                return film
    return None


def rewrite(question: str, film: str) -> str:
    """The question with references to the film replaced by its title (or the title added)."""
    stripped = question.strip()
    if _REFERENCE.search(stripped):
        def sub(match: re.Match) -> str:
            return f"{film}'s" if match.group(0).lower() == "its" else film
        return _REFERENCE.sub(sub, stripped, count=1)
    body = stripped.rstrip("?!. ")
    tail = stripped[len(body):]
    return f"{body} in {film}{tail or '?'}"


def resolve_question(
    question: str,
    history: Sequence[Mapping[str, Any]],
    titles: Sequence[str],
    filters: Mapping[str, Any] | None = None,
) -> Resolved:
    """How ``question`` is understood given the conversation so far."""
    question = question.strip()
    filters = dict(filters) if filters else None
    filtered_film = filters.get("film") if filters else None
    named = find_film(question, titles)
    if named:
        film, resolved = named, question
    elif isinstance(filtered_film, str):
        film, resolved = filtered_film, question
    else:
        film = film_in_focus(history, titles) if history else None
        resolved = rewrite(question, film) if film else question
    if film and not filtered_film:
        filters = {**(filters or {}), "film": film}
    return Resolved(question=resolved, film=film, filters=filters)
