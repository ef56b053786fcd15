"""Question analysis for the span reader: expected answer type and cue.

The reader extracts typed spans, so it first guesses what kind of thing the
question asks for (a person, a year, a place, a title, or a free phrase) and
which film-review pattern usually carries such an answer (the *cue*: "X as
Y" for who-plays, "directed by X" for directors, "set in X" for settings...).
These are rules on the lower-cased question; the weights that decide between
candidates are learned (see ``training/train_span_reader.py``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum


class AnswerType(str, Enum):
    PERSON = "person"
    DATE = "date"
    PLACE = "place"
    WORK = "work"  # title of a film, novel, play, story
    PHRASE = "phrase"  # anything else: descriptions, opinions, clauses


class Cue(str, Enum):
    """Which film-review pattern the question points at."""

    ROLE = "role"  # who plays / voices / is <character>
    DIRECTOR = "director"
    AUTHOR = "author"  # based on / adapted from a work by X
    SETTING = "setting"  # set in / takes place in / filmed in
    YEAR = "year"
    SOURCE = "source"  # which novel/story/play is it based on
    SIMILAR = "similar"  # which film is it like / a rip-off / remake of
    NONE = "none"


_WORK_NOUNS = r"(?:film|movie|novel|book|play|story|short story|series|show|picture|comic|musical|opera|poem|franchise)"

# Order matters: the first matching rule wins.
_TYPE_RULES: list[tuple[re.Pattern[str], AnswerType]] = [
    (re.compile(r"\b(?:what|which) year\b|\bwhen\b|\byear\b|\bwhat decade\b"), AnswerType.DATE),
    # "which shakespeare play", "what sci-fi novel"; not "what is the series like", "what about the film".
    (
        re.compile(r"\b(?:what|which)(?: (?!(?:is|was|are|were|does|do|did|the|a|an|about|of|this|that)\b)[\w'.-]+){0,2} "
                   + _WORK_NOUNS + r"s?\b(?! by\b)"),
        AnswerType.WORK,
    ),
    (
        re.compile(
            r"^(?:who|whom)\b|\bwho(?:'s|se)?\b|\bby whom\b|"
            r"\b(?:which|what)(?: [\w'-]+)? (?:actor|actress|director|author|writer|playwright|novelist|"
            r"star|composer|filmmaker|person|man|woman|cast member)\b"
        ),
        AnswerType.PERSON,
    ),
    (
        re.compile(
            r"^where\b|\bwhere\b|\b(?:what|which) (?:city|country|town|state|place|location|island|region|continent)\b"
        ),
        AnswerType.PLACE,
    ),
]

_CUE_RULES: list[tuple[re.Pattern[str], Cue]] = [
    (re.compile(r"\byear\b|\bwhen\b|\bdecade\b"), Cue.YEAR),
    (re.compile(r"\b(?:similar|like|rip-?off|remake|copy|sequel|imitat\w*|want\w* to be)\b"), Cue.SIMILAR),
    (re.compile(r"\bdirect\w*|\bdirector\b|\bmade\b|\bhelm\w*|\bfilmmaker\b"), Cue.DIRECTOR),
    (
        re.compile(r"\bbased\b|\badapt\w*|\bnovel\b|\bbook\b|\bstory\b|\bwr[io]t\w*|\bauthor\b|\bplay\b(?!s|ed)|"
                   r"\bsource\b|\broot material\b|\bderived\b|\bplaywright\b|\bnovelist\b"),
        Cue.AUTHOR,
    ),
    (re.compile(r"\bset\b|\btakes? place\b|\blocat\w*|\bfilmed\b|\bshot\b|\bwhere\b"), Cue.SETTING),
    (re.compile(r"\bplay\w*|\bvoice\w*|\bportray\w*|\bcast\b|\brole\b|\bstar\w*|\bwho(?:'s| is| was)\b"), Cue.ROLE),
]

# Question words that say nothing about where the answer is in the text. The verbs of the
# film-review patterns (play, direct, base, set, ...) are here too: the cue features carry
# them, and "play" must not make any casting sentence look like the answer to "who plays Sera?".
GENERIC_WORDS = frozenset(
    """who whom whose what which where when why how year film movie reviewer review think
    feel say opinion picture one thing do does did be is was are were 's
    play star portray voice cast role direct director write writer base adapt set take place
    release make shoot compose composer""".split()
)


@dataclass(frozen=True)
class QuestionInfo:
    """What the reader needs to know about a question."""

    text: str
    answer_type: AnswerType
    cue: Cue
    content_lemmas: frozenset[str] = field(default_factory=frozenset)


def answer_type_of(question: str) -> AnswerType:
    """Expected answer type of ``question`` (rules on the lower-cased text)."""
    q = question.lower().strip()
    for pattern, answer_type in _TYPE_RULES:
        if pattern.search(q):
            return answer_type
    return AnswerType.PHRASE


def cue_of(question: str, answer_type: AnswerType) -> Cue:
    """The film-review pattern that usually carries the answer to ``question``."""
    q = question.lower().strip()
    if answer_type is AnswerType.PHRASE:
        return Cue.NONE
    if answer_type is AnswerType.DATE:
        return Cue.YEAR
    if answer_type is AnswerType.PLACE:
        return Cue.SETTING
    for pattern, cue in _CUE_RULES:
        if pattern.search(q):
            if answer_type is AnswerType.WORK and cue not in (Cue.SIMILAR, Cue.AUTHOR):
                continue
            if answer_type is AnswerType.WORK and cue is Cue.AUTHOR:
                return Cue.SOURCE
            if answer_type is AnswerType.PERSON and cue in (Cue.YEAR, Cue.SETTING, Cue.SIMILAR):
                continue
            return cue
    return Cue.ROLE if answer_type is AnswerType.PERSON else Cue.NONE


def content_lemmas(lemmas_and_flags: list[tuple[str, bool]]) -> frozenset[str]:
    """Lower-cased lemmas of the content words, given ``(lemma, is_stop_or_punct)`` pairs."""
    return frozenset(
        lemma.lower()
        for lemma, skip in lemmas_and_flags
        if not skip and lemma.lower() not in GENERIC_WORDS and len(lemma) > 1
    )
