"""The default reader: each question goes to the reader that handles its kind best.

Two readers are built from what is available offline:

* the typed-span reader (``qa.span_reader``): spaCy candidates scored by a
  learned model per answer type; strong on people, dates, places and titles
  ("who plays Sera?", "when was it released?", "what novel is it based on?");
* the span model (``qa/data/span_model``): the bundled MiniLM encoder
  fine-tuned for extractive QA by ``training/train_span_model.py``; it marks
  free phrases ("how is the soundtrack?", "what does the reviewer think of
  the direction?") that no entity or pattern describes.

Questions whose expected answer type is in ``MODEL_TYPES`` go to the span
model, the others to the typed-span reader, and to the span model as well
when the typed reader finds nothing above the threshold. Each reader has its own learned
no-answer threshold; the span model's scores are mapped onto the typed
reader's scale (monotonically, its threshold onto the typed one) so that one
threshold decides for both and scores keep their order.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from qa.answer_types import AnswerType, answer_type_of
from qa.hf_reader import TransformerReader
from qa.schema import Answer, Passage
from qa.span_reader import SpanReader

SPAN_MODEL_PATH = Path(__file__).parent / "data" / "span_model"
# The design was chosen on the dev files (factual-qa-dev F1 0.73 and subjqa-movies F1 0.60 with
# free phrases only to the model and the fallback on; 0.69 / 0.58 also sending titles and dates
# to the model, which held-out synthetic questions had favoured: see the README).
MODEL_TYPES = frozenset({AnswerType.PHRASE})
FALLBACK = True  # a typed question with no typed answer above the threshold is read by the model too


def rescale(score: float, from_threshold: float, to_threshold: float) -> float:
    """Piecewise-linear map of [0, 1] onto [0, 1] sending ``from_threshold`` to ``to_threshold``."""
    if score < from_threshold:
        return score * to_threshold / from_threshold
    return to_threshold + (score - from_threshold) * (1.0 - to_threshold) / (1.0 - from_threshold)


class CombinedReader:
    """Typed-span reader for typed questions, the span model for free-phrase ones."""

    def __init__(self, typed: SpanReader | None = None, model: TransformerReader | None = None,
                 model_types: frozenset[AnswerType] = MODEL_TYPES, fallback: bool = FALLBACK) -> None:
        self.typed = typed or SpanReader()
        self.model = model or TransformerReader(SPAN_MODEL_PATH)
        self.model_types = model_types
        self.fallback = fallback

    @property
    def threshold(self) -> float:
        """One no-answer threshold for both readers: the typed reader's."""
        return self.typed.threshold

    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        if answer_type_of(question) in self.model_types:
            return self._model_answers(question, passages)
        answers = self.typed.read(question, passages)
        if self.fallback and max((a.score for a in answers), default=0.0) < self.threshold:
            answers += self._model_answers(question, passages)
        return answers

    def _model_answers(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        own = self.model.threshold if self.model.threshold is not None else self.threshold
        return [replace(a, score=rescale(a.score, own, self.threshold)) for a in self.model.read(question, passages)]
