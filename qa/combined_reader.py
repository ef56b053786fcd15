"""The default reader: two readers built from what is available offline, used together.

* the typed-span reader (``qa.span_reader``): spaCy candidates scored by a
  learned model per answer type; good at people, dates, places and titles
  ("who plays Sera?", "when was it released?", "what novel is it based on?");
* the span model (``qa/data/span_model``): the bundled MiniLM encoder
  fine-tuned for extractive QA by ``training/train_span_model.py``; it also
  marks free phrases ("how is the soundtrack?", "what does the reviewer think
  of the direction?") that no entity or pattern describes.

Free-phrase questions (answer types in ``MODEL_TYPES``) go to the span model
alone. Typed questions are read by both, and an answer's score is the chance
that at least one of them is right, taking them as independent ("noisy OR":
``1 - (1 - p_typed)(1 - p_model)``, each reader's best score for that answer
text, 0 when it did not propose it): an answer both readers find rises, one
that only one reader finds keeps that reader's score.

On typed questions the span model reads first. When it is sure (its best
answer scores at least ``MODEL_SURE`` and the answers it proposes elsewhere,
away from that span, add up to at most ``MODEL_RIVALS``), its answers stand
and the typed reader is not run: skipping the spaCy parse halves the reading
time of those questions, and on held-out film questions
(``training/tune_combined.py``) F1 was no lower than reading both. Otherwise the
typed reader reads the same stretches and the scores are combined as above.

Each reader has its own learned no-answer threshold; the span model's scores
are first mapped onto the typed reader's scale (monotonically, its threshold
onto the typed one) so that one threshold decides for both.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from qa.answer_types import AnswerType, answer_type_of
from qa.hf_reader import TransformerReader
from qa.schema import Answer, Passage, normalize_answer
from qa.span_reader import SpanReader, rebase

SPAN_MODEL_PATH = Path(__file__).parent / "data" / "span_model"
MODEL_TYPES = frozenset({AnswerType.PHRASE})
# On typed questions the span model's answers stand alone when its best one scores at least MODEL_SURE (on
# the typed reader's scale) and its answers elsewhere add up to at most MODEL_RIVALS. Chosen on held-out
# synthetic film questions by training/tune_combined.py: the most questions skipped without lowering F1.
MODEL_SURE = 0.5
MODEL_RIVALS = 0.8


def rescale(score: float, from_threshold: float, to_threshold: float) -> float:
    """Piecewise-linear map of [0, 1] onto [0, 1] sending ``from_threshold`` to ``to_threshold``."""
    if score < from_threshold:
        return score * to_threshold / from_threshold
    return to_threshold + (score - from_threshold) * (1.0 - to_threshold) / (1.0 - from_threshold)


def noisy_or(p: float, q: float) -> float:
    """The chance that at least one of two independent readers is right."""
    return 1.0 - (1.0 - p) * (1.0 - q)


def combine(typed: list[Answer], model: list[Answer]) -> list[Answer]:
    """Both readers' answers, each scored by the noisy OR of the two readers' best scores for its text."""
    typed_best, model_best = _best_by_text(typed), _best_by_text(model)
    return ([replace(a, score=noisy_or(a.score, model_best.get(normalize_answer(a.text), 0.0))) for a in typed]
            + [replace(a, score=noisy_or(a.score, typed_best.get(normalize_answer(a.text), 0.0))) for a in model])


def sureness(answers: Sequence[Answer]) -> tuple[float, float]:
    """(the best score, the summed score of the answers that do not overlap the best one).

    Overlap is judged in document offsets: answers read in two stretches of one passage
    (see ``SpanReader.focus``) have passage offsets relative to different stretches.
    """
    if not answers:
        return 0.0, 0.0
    best = max(answers, key=lambda a: a.score)
    rivals = sum(a.score for a in answers if a.document_id != best.document_id
                 or a.document_end <= best.document_start or a.document_start >= best.document_end)
    return best.score, rivals


def _best_by_text(answers: list[Answer]) -> dict[str, float]:
    best: dict[str, float] = {}
    for a in answers:
        key = normalize_answer(a.text)
        best[key] = max(best.get(key, 0.0), a.score)
    return best


class CombinedReader:
    """The span model on free-phrase questions; on typed ones too, with the typed reader (noisy-OR of their
    scores) unless the span model is already sure (``model_sure``, ``model_rivals``)."""

    def __init__(self, typed: SpanReader | None = None, model: TransformerReader | None = None,
                 model_types: frozenset[AnswerType] = MODEL_TYPES, model_sure: float = MODEL_SURE,
                 model_rivals: float = MODEL_RIVALS) -> None:
        self.typed = typed or SpanReader()
        self.model = model or TransformerReader(SPAN_MODEL_PATH)
        self.model_types = model_types
        self.model_sure, self.model_rivals = model_sure, model_rivals

    @property
    def threshold(self) -> float:
        """One no-answer threshold for both readers: the typed reader's."""
        return self.typed.threshold

    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        if answer_type_of(question) in self.model_types:
            return self._model_answers(question, passages)
        # Both readers read only the stretches that can hold a typed answer.
        info = self.typed.analyse(question)
        stretches = self.typed.focus(info, passages)
        model = self._model_answers(question, stretches)
        best, rivals = sureness(model)
        if best >= self.model_sure and rivals <= self.model_rivals:
            return rebase(model, passages)
        return rebase(combine(self.typed.read_stretches(info, stretches), model), passages)

    def _model_answers(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        own = self.model.threshold if self.model.threshold is not None else self.threshold
        return [replace(a, score=rescale(a.score, own, self.threshold)) for a in self.model.read(question, passages)]
