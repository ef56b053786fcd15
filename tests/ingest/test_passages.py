"""Passage splitting: paragraphs, sentence windows for long ones, and exact offsets."""
from __future__ import annotations

import re

from qa.ingest.passages import split_document
from qa.schema import Document


def words(text: str) -> int:
    return len(text.split())


def assert_offsets(doc: Document, passages) -> None:
    for p in passages:
        assert doc.text[p.document_start:p.document_end] == p.text
        assert p.text == p.text.strip()


def test_paragraphs_with_offsets():
    text = "Title (1999)\n\n  First paragraph here.\nStill first.\n\n\n\nSecond one.  \n"
    doc = Document(id="d", text=text, film="Film")
    passages = split_document(doc)
    assert [p.text for p in passages] == ["Title (1999)", "First paragraph here.\nStill first.", "Second one."]
    assert [p.id for p in passages] == ["d#0", "d#1", "d#2"]
    assert all(p.film == "Film" for p in passages)
    assert_offsets(doc, passages)


def test_a_span_in_a_passage_maps_to_the_same_characters_in_the_document():
    doc = Document(id="llv", text="Intro.\n\nIt stars Nicolas Cage as Ben, and Elisabeth Shue as Sera.")
    passage = split_document(doc)[1]
    start = passage.text.index("Elisabeth Shue")
    end = start + len("Elisabeth Shue")
    assert doc.text[passage.document_start + start:passage.document_start + end] == "Elisabeth Shue"


def test_long_paragraph_is_split_into_overlapping_sentence_windows():
    sentences = [f"Sentence number {i} talks about the film at some length here." for i in range(60)]
    doc = Document(id="long", text=" ".join(sentences))
    passages = split_document(doc, max_words=50, overlap=1)
    assert len(passages) > 5
    assert all(words(p.text) <= 50 for p in passages)
    assert_offsets(doc, passages)
    for a, b in zip(passages, passages[1:]):
        last_sentence = re.findall(r"Sentence number \d+", a.text)[-1]
        assert last_sentence in b.text  # one sentence of overlap
    covered = " ".join(p.text for p in passages)
    assert all(f"number {i} " in covered for i in range(60))


def test_a_huge_sentence_without_punctuation_is_cut_at_word_boundaries():
    doc = Document(id="blob", text=" ".join(["word"] * 1000))
    passages = split_document(doc, max_words=200)
    assert len(passages) == 5
    assert all(words(p.text) <= 200 for p in passages)
    assert_offsets(doc, passages)
