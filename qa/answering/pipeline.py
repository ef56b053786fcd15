"""From a question to answers: retrieve passages, read them, merge and rank answers.

``Pipeline`` owns the open index and the models for one process. It checks the
index's ``CURRENT`` pointer before each question and switches to a newly
published generation without a restart; the old one keeps serving until then.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from qa.answering.conversation import resolve_question
from qa.embedding.loading import embedder_for
from qa.reading.base import Reader, load_reader
from qa.retrieval.search import retrieve_with
from qa.schema import Answer, Passage, Source, normalize_answer
from qa.settings import Settings
from qa.stores.base import FILTER_FIELDS, Filters, Store
from qa.stores.factory import open_store, store_version


DEFAULT_NO_ANSWER_THRESHOLD = 0.3  # for readers that do not learn their own
DEFAULT_FULLER_FORM_SHARE = 0.5  # likewise, for readers that do not say how far to trust a fuller form


class BadRequest(ValueError):
    """The question or its options cannot be used; the message says why."""


@dataclass
class Result:
    question: str
    answers: list[Answer]
    passages: list[Passage]
    no_answer: bool
    took_ms: int
    resolved_question: str
    film: str | None = None
    filters: dict = field(default_factory=dict)


def merge_answers(answers: Sequence[Answer], fuller_form_share: float = DEFAULT_FULLER_FORM_SHARE) -> list[Answer]:
    """One answer per distinct text, citing every passage it came from, best first.

    Texts are the same when they normalise equally, or when one short name is
    contained in the other ("Shue" and "Elisabeth Shue"): the best-scored
    form leads and the others become its sources, except that a fuller form
    scored at least ``fuller_form_share`` of the lead's score takes over the
    lead (with the lead's score): "Elisabeth Shue" rather than "Shue". The
    share depends on the reader's score scale, so a reader may carry its own
    (the span model's is chosen with its calibration).
    """
    merged: list[Answer] = []
    keys: list[set[str]] = []
    for answer in sorted(answers, key=lambda a: -a.score):
        tokens = set(normalize_answer(answer.text).split())
        if not tokens:
            continue
        for i, (lead, lead_tokens) in enumerate(zip(merged, keys)):
            same = tokens == lead_tokens or (len(tokens) <= 4 and len(lead_tokens) <= 4 and
                                             (tokens <= lead_tokens or lead_tokens <= tokens))
            if same:
                if not any(s.passage_id == answer.passage_id and s.document_start == answer.document_start
                           for s in lead.sources):
                    lead.sources.append(_source(answer))
                if lead_tokens < tokens and answer.score >= fuller_form_share * lead.score:
                    merged[i] = replace(answer, score=lead.score, sources=lead.sources)
                    keys[i] = tokens
                break
        else:
            answer.sources = [_source(answer)]
            merged.append(answer)
            keys.append(tokens)
    return merged


def _source(answer: Answer) -> Source:
    return Source(document_id=answer.document_id, passage_id=answer.passage_id,
                  document_start=answer.document_start, document_end=answer.document_end,
                  score=round(answer.score, 4), film=answer.film)


class Pipeline:
    def __init__(self, settings: Settings, reader: Reader | None = None):
        self.settings = settings
        self._reader = reader
        self._store: Store | None = None
        self._generation: str | None = None
        self._lock = threading.Lock()

    # ----- resources -------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The index in use, reopened when a new generation has been published."""
        generation = store_version(self.settings)
        if self._store is None or generation != self._generation:
            with self._lock:
                if self._store is None or generation != self._generation:
                    self._store = open_store(self.settings)
                    self._generation = generation
        return self._store

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = load_reader(self.settings)
        return self._reader

    @property
    def no_answer_threshold(self) -> float:
        """The configured threshold, else the reader's learned one (else 0.3)."""
        if self.settings.no_answer_threshold is not None:
            return self.settings.no_answer_threshold
        return self._learned("threshold", DEFAULT_NO_ANSWER_THRESHOLD)

    @property
    def fuller_form_share(self) -> float:
        """How close a fuller form must score to the lead to take its place (the reader's, else 0.5)."""
        return self._learned("fuller_form_share", DEFAULT_FULLER_FORM_SHARE)

    def _learned(self, name: str, default: float) -> float:
        """The reader's own value of ``name`` (chosen with its calibration), else ``default``."""
        learned = getattr(self.reader, name, None)
        return float(learned) if learned is not None else default

    def embed(self, texts: list[str]):
        return embedder_for(self.settings).encode(texts)

    def warm_up(self) -> None:
        """Load models and the index now rather than on the first question.

        One search fills the store's caches too (film titles; for Milvus, the sampled word counts).
        """
        self.embed(["warm up"])
        self.reader.read("who?", [Passage(id="w#0", document_id="w", text="Warm up.", document_start=0)])
        self.search("who plays the lead in the film?", 1)

    # ----- questions -------------------------------------------------------------------------

    def check_filters(self, store: Store, filters: Mapping[str, object] | None) -> dict:
        """Filters with known keys and string (or list of string) values, else ``BadRequest``."""
        if not filters:
            return {}
        known = set(FILTER_FIELDS) | store.metadata_keys()
        clean: dict = {}
        for key, value in filters.items():
            if key not in known:
                raise BadRequest(f"unknown filter field {key!r}; known fields: {', '.join(sorted(known))}")
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                clean[key] = str(value)
            elif isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                                 for v in value):
                clean[key] = [str(v) for v in value]
            else:
                raise BadRequest(f"filter {key!r} must be a string or a list of strings")
        return clean

    def search(self, question: str, top_k: int | None = None, filters: Filters | None = None) -> list[Passage]:
        store = self.store
        return retrieve_with(self.settings, store, self.embed, question, top_k, self.check_filters(store, filters))

    def _locate(self, text: str) -> str | None:
        """The film of the passage that best matches ``text`` (for turns that name no film)."""
        hits = self.search(text, 1)
        return hits[0].film if hits else None

    def _answer(self, question: str, top_k: int | None, filters: Filters | None
                ) -> tuple[list[Passage], list[Answer], bool]:
        passages = self.search(question, top_k, filters)
        answers = merge_answers(self.reader.read(question, passages), self.fuller_form_share) if passages else []
        no_answer = not answers or answers[0].score < self.no_answer_threshold
        return passages, answers, no_answer

    def ask(self, question: str, top_k: int | None = None, filters: Filters | None = None,
            history: Sequence[Mapping[str, Any]] = ()) -> Result:
        """Answers to ``question``; a follow-up is first resolved against ``history``."""
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise BadRequest("the question is empty")
        store = self.store
        resolved = resolve_question(question, history, [t for t, _ in store.films()], filters, self._locate)
        passages, answers, no_answer = self._answer(resolved.question, top_k, resolved.filters)
        if no_answer and resolved.carried:
            # "who plays Ripley?" after turns about another film: maybe it is not a follow-up
            retry = self._answer(question, top_k, filters)
            if not retry[2]:
                passages, answers, no_answer = retry
                resolved = replace(resolved, question=question, film=answers[0].film, filters=filters,
                                   carried=False)
        return Result(
            question=question,
            resolved_question=resolved.question,
            film=resolved.film,
            answers=[] if no_answer else answers[: self.settings.max_answers],
            passages=passages,
            no_answer=no_answer,
            took_ms=round((time.perf_counter() - started) * 1000),
            filters=dict(resolved.filters or {}),
        )
