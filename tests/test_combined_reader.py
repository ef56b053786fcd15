"""The default reader (qa.combined_reader): routing by answer type, one threshold, the shipped span model."""
from __future__ import annotations

from pathlib import Path

import pytest

from qa.answer_types import Cue, QuestionInfo, answer_type_of
from qa.combined_reader import SPAN_MODEL_PATH, CombinedReader, noisy_or, rescale, sureness
from qa.documents import load_path
from qa.passages import split_document
from qa.schema import Answer, Passage


class Fixed:
    """A reader that answers every question with the passage's first word, at a fixed score."""

    def __init__(self, score: float, threshold: float | None) -> None:
        self.score, self.threshold, self.questions = score, threshold, []

    def read(self, question: str, passages: list[Passage]) -> list[Answer]:
        self.questions.append(question)
        p = passages[0]
        return [Answer.in_passage(p, 0, p.text.index(" "), self.score)]

    # What the combined reader asks of its typed reader besides ``read``.
    def analyse(self, question: str) -> QuestionInfo:
        return QuestionInfo(question, answer_type_of(question), Cue.NONE)

    def focus(self, info: QuestionInfo, passages: list[Passage]) -> list[Passage]:
        return list(passages)

    def read_stretches(self, info: QuestionInfo, passages: list[Passage]) -> list[Answer]:
        return self.read(info.text, passages)


def test_rescale_sends_one_threshold_onto_the_other_and_keeps_order():
    assert rescale(0.0, 0.2, 0.34) == 0.0 and rescale(1.0, 0.2, 0.34) == pytest.approx(1.0)
    assert rescale(0.2, 0.2, 0.34) == pytest.approx(0.34)
    values = [rescale(x / 20, 0.2, 0.34) for x in range(21)]
    assert values == sorted(values) and len(set(values)) == len(values)


def test_phrase_questions_go_to_the_model_alone_and_typed_ones_to_both():
    typed, model = Fixed(0.9, 0.34), Fixed(0.2, 0.2)
    reader = CombinedReader(typed=typed, model=model)
    p = [Passage(id="d#0", document_id="d", text="Cage delivers a powerful performance.", document_start=0)]
    answers = reader.read("how is Cage's performance?", p)
    assert typed.questions == [] and model.questions == ["how is Cage's performance?"]
    # The model's own threshold (0.2) lands on the shared one (the typed reader's, 0.34).
    assert reader.threshold == 0.34 and answers[0].score == pytest.approx(0.34)
    answers = reader.read("who plays Ben?", p)
    assert typed.questions == ["who plays Ben?"] and model.questions[-1] == "who plays Ben?"
    # Both proposed "Cage": each copy scores 1 - (1 - 0.9)(1 - 0.34) = 0.934.
    assert [a.text for a in answers] == ["Cage", "Cage"]
    assert all(a.score == pytest.approx(noisy_or(0.9, 0.34)) == pytest.approx(0.934) for a in answers)


def test_a_typed_question_the_span_model_is_sure_of_skips_the_typed_reader():
    typed, model = Fixed(0.9, 0.34), Fixed(0.95, 0.2)
    reader = CombinedReader(typed=typed, model=model, model_sure=0.7)
    p = [Passage(id="d#0", document_id="d", text="Cage plays Ben.", document_start=0)]
    answers = reader.read("who plays Ben?", p)
    assert model.questions == ["who plays Ben?"] and typed.questions == []
    assert [a.text for a in answers] == ["Cage"] and answers[0].score == pytest.approx(rescale(0.95, 0.2, 0.34))
    # Less sure than that: the typed reader reads too.
    reader.model_sure = 0.99
    reader.read("who plays Ben?", p)
    assert typed.questions == ["who plays Ben?"]


def test_a_span_model_torn_between_places_is_not_sure():
    class Torn(Fixed):
        def read(self, question, passages):
            p = passages[0]
            return [Answer.in_passage(p, 0, 4, 0.8), Answer.in_passage(p, p.text.index("Ben"), len(p.text) - 1, 0.6),
                    Answer.in_passage(p, 0, 10, 0.5)]  # "Cage plays" overlaps "Cage": not a rival

    assert sureness([]) == (0.0, 0.0)
    p = [Passage(id="d#0", document_id="d", text="Cage plays Ben.", document_start=0)]
    assert sureness(Torn(0, 0).read("", p)) == (0.8, pytest.approx(0.6))
    # Two stretches of one passage: the same stretch offsets are different places in the review.
    first, second = (Passage(id="d#0", document_id="d", text="Cage plays Ben.", document_start=s) for s in (0, 40))
    assert sureness([Answer.in_passage(first, 0, 4, 0.8), Answer.in_passage(second, 0, 4, 0.6)]) == (0.8, 0.6)
    typed = Fixed(0.9, 0.34)
    reader = CombinedReader(typed=typed, model=Torn(0.0, 0.34), model_sure=0.7, model_rivals=0.5)
    reader.read("who plays Ben?", p)
    assert typed.questions == ["who plays Ben?"]
    reader.model_rivals = 0.7
    reader.read("who is Ben?", p)
    assert typed.questions == ["who plays Ben?"]


def test_an_answer_only_one_reader_proposes_keeps_its_score():
    class Other(Fixed):
        def read(self, question, passages):
            p = passages[0]
            return [Answer.in_passage(p, p.text.index("powerful"), p.text.index(" performance"), self.score)]

    reader = CombinedReader(typed=Fixed(0.6, 0.34), model=Other(0.34, 0.34))
    p = [Passage(id="d#0", document_id="d", text="Cage delivers a powerful performance.", document_start=0)]
    scores = {a.text: a.score for a in reader.read("who is great?", p)}
    assert scores == {"Cage": pytest.approx(0.6), "powerful": pytest.approx(0.34)}


@pytest.fixture(scope="module")
def shipped_passages() -> dict[str, list[Passage]]:
    return {d.id: split_document(d) for d in load_path(Path(__file__).resolve().parents[1] / "documents")}


def test_the_span_model_ships_with_its_calibration_and_threshold():
    model = CombinedReader().model  # reads qa/data/span_model/reader.json
    assert (SPAN_MODEL_PATH / "model.safetensors").is_file()
    assert model.calibration is not None and 0.0 < model.threshold < 1.0


def test_the_shipped_span_model_marks_opinion_phrases(shipped_passages):
    reader = CombinedReader()
    passages = shipped_passages["leaving-las-vegas"]
    answers = sorted(reader.read("how is Shue's performance?", passages), key=lambda a: -a.score)
    assert answers and answers[0].score >= reader.threshold
    best = answers[0]
    assert "equally compelling" in best.text  # "Shue’s performance is equally compelling"
    assert passages_text(passages, best.passage_id)[best.start : best.end] == best.text
    # Typed questions still get names from the typed-span reader.
    names = sorted(reader.read("who plays Sera?", passages), key=lambda a: -a.score)
    assert names[0].text == "Elisabeth Shue"


def test_typed_questions_are_read_in_stretches_but_answered_with_whole_passage_offsets(shipped_passages):
    reader = CombinedReader()
    passages = shipped_passages["leaving-las-vegas"]
    info = reader.typed.analyse("who plays Sera?")
    stretches = reader.typed.focus(info, passages)
    assert sum(len(s.text) for s in stretches) < sum(len(p.text) for p in passages)
    for answer in reader.read("who plays Sera?", passages):
        assert passages_text(passages, answer.passage_id)[answer.start : answer.end] == answer.text


def passages_text(passages: list[Passage], passage_id: str) -> str:
    return next(p.text for p in passages if p.id == passage_id)
