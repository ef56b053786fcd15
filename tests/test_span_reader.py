"""Tests of the default reader (qa.span_reader.SpanReader). Offline; about 10 s."""
from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from qa.schema import Passage  # noqa: E402
from qa.span_reader import SpanReader, clean_span, focus, rebase, rough_sentences  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"

LLV_PARAGRAPH = (
    "Leaving Las Vegas is a 1995 drama directed by Mike Figgis, renowned for its raw and unflinching portrayal "
    "of addiction, love, and the human condition. Based on the semi-autobiographical novel by John O\u2019Brien, "
    "the film stars Nicolas Cage as Ben Sanderson, a Hollywood screenwriter who relocates to Las Vegas with the "
    "intention of drinking himself to death, and Elisabeth Shue as Sera, a compassionate sex worker who forms an "
    "unlikely bond with him."
)
OFFTOPIC = (
    "The soundtrack is mostly forgettable, and the pacing drags in the middle. "
    "Still, the photography is lovely and the ending is moving."
)


@pytest.fixture(scope="module")
def reader() -> SpanReader:
    return SpanReader()


def _passage(text: str, doc_id: str = "doc", start: int = 0, i: int = 0) -> Passage:
    return Passage(id=f"{doc_id}#{i}", document_id=doc_id, text=text, document_start=start)


def _best(reader: SpanReader, question: str, passages: list[Passage]):
    answers = reader.read(question, passages)
    assert answers, question
    return max(answers, key=lambda a: a.score)


def _normal(s: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", s.lower()).split())


@pytest.mark.parametrize(
    "question, expected",
    [
        ("who plays Sera?", "Elisabeth Shue"),
        ("who directed Leaving Las Vegas?", "Mike Figgis"),
        ("what year was it released?", "1995"),
        ("who plays ben sanderson", "Nicolas Cage"),
        ("the film is based on a novel by whom", "John O\u2019Brien"),
    ],
)
def test_factual_questions_on_leaving_las_vegas(reader: SpanReader, question: str, expected: str) -> None:
    best = _best(reader, question, [_passage(LLV_PARAGRAPH)])
    assert best.text == expected
    assert best.score >= reader.threshold


def test_seed_file_paragraph_matches_the_test_text() -> None:
    seed = SHARED / "seed" / "leaving-las-vegas.md"
    if not seed.exists():
        pytest.skip(f"../shared/data not found: {seed}")
    assert LLV_PARAGRAPH in seed.read_text(encoding="utf-8")


def test_offsets_and_scores(reader: SpanReader) -> None:
    prefix = "Leaving Las Vegas (1995)\n\n"
    passages = [_passage(OFFTOPIC, "d", 0, 0), _passage(LLV_PARAGRAPH, "d", len(prefix), 1)]
    document = prefix + LLV_PARAGRAPH
    answers = reader.read("who plays Sera", passages)
    assert answers
    per_passage: dict[str, int] = {}
    for a in answers:
        passage = next(p for p in passages if p.id == a.passage_id)
        assert passage.text[a.start : a.end] == a.text
        if passage is passages[1]:
            assert document[a.document_start : a.document_end] == a.text
        assert 0.0 <= a.score <= 1.0
        assert a.text == a.text.strip() and a.text[0].isalnum() and a.text[-1].isalnum()
        per_passage[a.passage_id] = per_passage.get(a.passage_id, 0) + 1
    assert max(per_passage.values()) <= reader.top_per_passage


def test_rough_sentences_cover_the_text_at_punctuation_and_line_breaks() -> None:
    text = "First one. Second (really)! Third?\nFourth<br /><br />Fifth"
    assert [text[s:e] for s, e in rough_sentences(text)] == [
        "First one.", "Second (really)!", "Third?", "Fourth", "Fifth"]


def test_focus_keeps_the_sentences_that_name_the_question_words(reader: SpanReader) -> None:
    prefix = "Leaving Las Vegas (1995)\n\n"
    text = OFFTOPIC + " " + LLV_PARAGRAPH
    passages = [_passage(OFFTOPIC, "d", 0, 0), _passage(text, "d", len(prefix), 1)]
    info = reader.analyse("who plays Sera?")
    # The sentence that names Sera ranks first; the one with only a casting word ("portrayal") next.
    assert [s.text for s in focus(info, passages, max_sentences=2)] == [LLV_PARAGRAPH]
    stretches = focus(info, passages, max_sentences=1)
    assert [s.text for s in stretches] == [LLV_PARAGRAPH[LLV_PARAGRAPH.index("Based on"):]]
    assert stretches[0].id == passages[1].id
    document = prefix + text
    assert document[stretches[0].document_start : stretches[0].document_end] == stretches[0].text
    # A question none of whose words appear reads the passages whole.
    assert focus(reader.analyse("who is Zyzzx?"), [_passage(OFFTOPIC)]) == [_passage(OFFTOPIC)]
    # Answers found in a stretch get offsets in the whole passage.
    answers = rebase(reader.read_stretches(info, stretches), passages)
    best = max(answers, key=lambda a: a.score)
    assert best.text == "Elisabeth Shue" and passages[1].text[best.start : best.end] == best.text


def test_no_answer_gets_a_low_score(reader: SpanReader) -> None:
    answers = reader.read("who directed the film?", [_passage(OFFTOPIC)])
    assert all(a.score < reader.threshold for a in answers)
    answers = reader.read("where is the film set", [_passage(OFFTOPIC)])
    assert all(a.score < reader.threshold for a in answers)


def test_empty_inputs(reader: SpanReader) -> None:
    assert reader.read("who plays Sera?", []) == []
    assert reader.read("who plays Sera?", [_passage("")]) == []


def test_html_entities_are_not_in_spans(reader: SpanReader) -> None:
    text = "&quot;Pocahontas&quot; was fun.  That said ... the music, animation, and so on are all outstanding."
    for a in reader.read("How good was the music?", [_passage(text)]):
        assert "&quot" not in a.text and text[a.start : a.end] == a.text


def test_clean_span() -> None:
    text = ' "&quot;Lokis&quot;", '
    start, end = clean_span(text, 0, len(text))
    assert text[start:end] == "Lokis"
    assert clean_span("...", 0, 3) is None


def test_injected_embedder_is_used() -> None:
    import numpy as np

    calls = []

    def embed(texts):
        calls.append(len(texts))
        return np.ones((len(texts), 8)) / np.sqrt(8)

    r = SpanReader(embedder=embed)
    r.read("who plays Sera?", [_passage(LLV_PARAGRAPH)])
    assert calls


def test_some_factual_dev_questions(reader: SpanReader) -> None:
    data = SHARED / "data" / "imdb-reviews"
    if not (data / "factual-qa-dev.jsonl").exists():
        pytest.skip(f"../shared/data not found: {data}")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from eval_reader import split_passages

    rows = [json.loads(line) for line in (data / "factual-qa-dev.jsonl").open()]
    # One question of each factual kind (the first in the file), so the test stays quick.
    picked: dict[str, dict] = {}
    for r in rows:
        picked.setdefault(r["kind"], r)
    wanted = {r["review_id"] for r in picked.values()}
    texts = {}
    with gzip.open(data / "reviews.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["id"] in wanted:
                texts[d["id"]] = d["text"]
                if len(texts) == len(wanted):
                    break
    right = 0
    for r in picked.values():
        best = _best(reader, r["question"], split_passages(r["review_id"], texts[r["review_id"]]))
        right += any(_normal(best.text) == _normal(a["text"]) for a in r["answers"])
    # A regression floor: 4 of these 7 were right when the reader was last trained (the
    # opinion and 'other' kinds are the weak ones); fewer means the reader got worse.
    assert right >= 4, f"{right}/{len(picked)} right"
