"""The pipeline: merging answers, the no-answer threshold, offsets, filters and follow-ups."""
from __future__ import annotations

import re

import pytest

from qa.answering.pipeline import BadRequest, Pipeline, merge_answers, normalize_answer
from qa.schema import Answer, Passage
from qa.settings import Settings


class NameReader:
    """Marks every 'Firstname Lastname' with a fixed score: enough to test the pipeline alone."""

    def __init__(self, score: float = 0.8):
        self.score = score

    def read(self, question, passages):
        return [Answer.in_passage(p, m.start(), m.end(), self.score)
                for p in passages for m in re.finditer(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b", p.text)]


def passage(pid: str, text: str, start: int = 0) -> Passage:
    return Passage(id=pid, document_id=pid.split("#")[0], text=text, document_start=start, film="F")


@pytest.mark.unit
def test_normalize_answer_is_squad_style():
    assert normalize_answer("The  Elisabeth Shue!") == "elisabeth shue"


@pytest.mark.unit
def test_near_duplicates_merge_citing_every_passage_best_first():
    a = Answer.in_passage(passage("a#0", "Elisabeth Shue stars."), 0, 14, 0.6)
    b = Answer.in_passage(passage("b#1", "with Elisabeth Shue"), 5, 19, 0.9)
    c = Answer.in_passage(passage("c#0", "Shue is great"), 0, 4, 0.5)
    d = Answer.in_passage(passage("d#0", "Nicolas Cage"), 0, 12, 0.7)
    merged = merge_answers([a, b, c, d])
    assert [m.text for m in merged] == ["Elisabeth Shue", "Nicolas Cage"]
    assert [s.passage_id for s in merged[0].sources] == ["b#1", "a#0", "c#0"]
    assert merged[0].score == 0.9


@pytest.mark.unit
def test_a_fuller_name_leads_when_scored_close_to_the_best():
    surname = Answer.in_passage(passage("a#0", "Baker is a delight."), 0, 5, 0.8)
    full = Answer.in_passage(passage("b#0", "It stars Josephine Baker."), 9, 24, 0.5)
    merged = merge_answers([surname, full])
    assert [(m.text, m.score, m.passage_id) for m in merged] == [("Josephine Baker", 0.8, "b#0")]
    assert {s.passage_id for s in merged[0].sources} == {"a#0", "b#0"}
    # A fuller form the reader doubts does not replace the lead.
    doubtful = Answer.in_passage(passage("c#0", "It stars Josephine Baker."), 9, 24, 0.3)
    assert [m.text for m in merge_answers([surname, doubtful])] == ["Baker"]


@pytest.mark.unit
def test_the_fuller_form_share_is_the_readers_when_it_has_one(tmp_path):
    surname = Answer.in_passage(passage("a#0", "Baker is a delight."), 0, 5, 0.8)
    full = Answer.in_passage(passage("b#0", "It stars Josephine Baker."), 9, 24, 0.5)
    assert [m.text for m in merge_answers([surname, full], fuller_form_share=0.7)] == ["Baker"]
    assert [m.text for m in merge_answers([surname, full], fuller_form_share=0.6)] == ["Josephine Baker"]
    settings = Settings(index_dir=tmp_path / "index")  # never opened: the share is the reader's business
    assert Pipeline(settings, reader=NameReader()).fuller_form_share == 0.5
    strict = NameReader()
    strict.fuller_form_share = 1.0
    assert Pipeline(settings, reader=strict).fuller_form_share == 1.0


def test_ask_returns_answers_with_document_offsets(shipped_settings):
    pipeline = Pipeline(shipped_settings, reader=NameReader())
    result = pipeline.ask("who plays Sera?", filters={"film": "Leaving Las Vegas"})
    assert not result.no_answer and result.answers
    store = pipeline.store
    for answer in result.answers:
        text = store.document(answer.document_id).text
        assert text[answer.document_start:answer.document_end] == answer.text
        assert answer.film == "Leaving Las Vegas"
    assert [p.score for p in result.passages] == sorted((p.score for p in result.passages), reverse=True)


def test_low_scores_mean_no_answer_but_passages_are_still_shown(shipped_settings):
    pipeline = Pipeline(shipped_settings.model_copy(update={"no_answer_threshold": 0.5}), reader=NameReader(0.2))
    result = pipeline.ask("who plays Sera?")
    assert result.no_answer and result.answers == [] and result.passages


def test_unknown_filter_fields_and_bad_values_are_rejected(shipped_settings):
    pipeline = Pipeline(shipped_settings, reader=NameReader())
    with pytest.raises(BadRequest, match="unknown filter field 'colour'"):
        pipeline.ask("who?", filters={"colour": "red"})
    with pytest.raises(BadRequest, match="string or a list of strings"):
        pipeline.ask("who?", filters={"film": {"nested": 1}})
    with pytest.raises(BadRequest, match="empty"):
        pipeline.ask("   ")


def test_a_film_named_in_the_question_restricts_retrieval(shipped_settings):
    pipeline = Pipeline(shipped_settings, reader=NameReader())
    result = pipeline.ask("who directed fargo")
    assert result.film == "Fargo" and {p.film for p in result.passages} == {"Fargo"}


def test_a_follow_up_is_resolved_against_the_history(shipped_settings):
    pipeline = Pipeline(shipped_settings, reader=NameReader())
    history = [{"question": "who directed Leaving Las Vegas?", "answer": "Mike Figgis"}]
    result = pipeline.ask("when was it released?", history=history)
    assert result.resolved_question == "when was Leaving Las Vegas released?"
    assert {p.film for p in result.passages} == {"Leaving Las Vegas"}


def test_the_index_is_reopened_when_a_new_generation_is_published(tmp_path):
    from qa.ingest.indexer import index_paths

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("---\ntitle: Alien\n---\nSigourney Weaver plays Ripley.")
    settings = Settings(index_dir=tmp_path / "index")
    index_paths([folder], settings)
    pipeline = Pipeline(settings, reader=NameReader())
    assert [f for f, _ in pipeline.store.films()] == ["Alien"]
    (folder / "b.md").write_text("---\ntitle: Jaws\n---\nRobert Shaw plays Quint.")
    index_paths([folder], settings)
    assert [f for f, _ in pipeline.store.films()] == ["Alien", "Jaws"]
