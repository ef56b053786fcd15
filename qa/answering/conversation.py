"""Follow-up questions: which film a question is about, and what it means in context.

The film in focus is, in order: the film named in the question; else the film
the request filters on; else the one the last turns of the conversation were
about (a turn's ``film``, or a title named in its question or answer). It
carries over until the user names another film.

A follow-up about the film in focus is rewritten so that it stands alone:

* a reference ("it", "its", "the film", "that movie", "this picture", "that one")
  becomes the title: "when was it released?" -> "when was Leaving Las Vegas released?";
* a question with an elided subject (no film named, no reference) gets the title
  added: "who plays Sera?" -> "who plays Sera in Leaving Las Vegas?";
* an elliptical question naming another film repeats the last full question
  about the new film: "and The Godfather?" -> "who directed The Godfather?".

The film in focus also becomes a ``film`` filter unless the request already
filters by film. All the state travels in the request's ``history``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from qa.retrieval.titles import find_film, normalize_title, title_span

_REFERENCE = re.compile(
    r"\b(?:(?:the|that|this)\s+(?:film|movie|picture)|(?:that|this)\s+one|it|its)\b", re.IGNORECASE)
# "and The Godfather?", "what about Jaws?", "how about for Fargo?": the rest of the question is a title
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|same for|and for|and what about)\s+(?:for\s+)?(?P<rest>.+?)"
                       r"[\s?.!]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Resolved:
    question: str
    film: str | None
    filters: dict[str, Any] | None
    carried: bool = False  # the film came from earlier turns, not from this question or a filter


Locate = Callable[[str], "str | None"]


def film_in_focus(history: Sequence[Mapping[str, Any]], titles: Sequence[str],
                  locate: Locate | None = None) -> str | None:
    """The film the conversation was last about, newest turn first.

    A turn's ``film`` counts first, then a title named in its question or answer.
    ``locate``, if given, finds the film of a turn that names none (for example by
    looking its question and answer up in the index); it is asked about the
    newest turn only, and its answer must be a known title.
    """
    for age, turn in enumerate(reversed(history)):
        if turn.get("film"):
            film = find_film(str(turn["film"]), titles)
            if film:
                return film
        for key in ("question", "answer"):
            film = find_film(str(turn.get(key) or ""), titles)
            if film:
                return film
        if locate is not None and age == 0:
            text = " ".join(str(turn.get(k) or "") for k in ("question", "answer")).strip()
            found = locate(text) if text else None
            if found and found in titles:
                return found
    return None


def rewrite(question: str, film: str) -> str:
    """The question with its first reference to the film replaced by the title (or the title added)."""
    stripped = question.strip()
    if _REFERENCE.search(stripped):
        def sub(match: re.Match) -> str:
            return f"{film}'s" if match.group(0).lower() == "its" else film
        return _REFERENCE.sub(sub, stripped, count=1)
    body = stripped.rstrip("?!. ")
    tail = stripped[len(body):]
    return f"{body} in {film}{tail or '?'}"


def _is_elliptical(question: str, titles: Sequence[str]) -> str | None:
    """The film of "and <film>?"-style questions, else None."""
    match = _ELLIPSIS.match(question)
    if not match:
        return None
    film = find_film(match.group("rest"), titles)
    return film if film and normalize_title(match.group("rest")) == normalize_title(film) else None


def _about(question: str, film: str, titles: Sequence[str]) -> str:
    """``question`` (a full question, perhaps about another film) asked about ``film`` instead."""
    named = find_film(question, titles)
    span = title_span(question, named) if named else None
    if span:
        return question[:span[0]] + film + question[span[1]:]
    return rewrite(question, film)


def resolve_question(
    question: str,
    history: Sequence[Mapping[str, Any]],
    titles: Sequence[str],
    filters: Mapping[str, Any] | None = None,
    locate: Locate | None = None,
) -> Resolved:
    """How ``question`` is understood given the conversation so far (``locate``: see ``film_in_focus``)."""
    question = question.strip()
    filters = dict(filters) if filters else None
    filtered_film = filters.get("film") if filters else None
    named = find_film(question, titles)
    elliptical = _is_elliptical(question, titles) if named else None
    if elliptical:
        earlier = next((str(t.get("question") or "") for t in reversed(history)
                        if t.get("question") and not _is_elliptical(str(t["question"]), titles)), None)
        film, resolved = elliptical, _about(earlier, elliptical, titles) if earlier else question
    elif named:
        film, resolved = named, question
    elif isinstance(filtered_film, str):
        film = find_film(filtered_film, titles) or filtered_film
        resolved = rewrite(question, film)
    else:
        film = film_in_focus(history, titles, locate) if history else None
        resolved = rewrite(question, film) if film else question
    if film and not filtered_film:
        filters = {**(filters or {}), "film": film}
    carried = bool(film) and not named and not isinstance(filtered_film, str)
    return Resolved(question=resolved, film=film, filters=filters, carried=carried)
