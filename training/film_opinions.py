"""Synthetic subjective questions about films, in SubjQA's style, from IMDB reviews.

SubjQA asks "How is the music?", "Is the film good?", "How were the effects?"
and its annotators mark a whole opinion clause as the answer: "the special
effects are wonderful", "The casting is superb", "I loved this film", "a
terrific cast". The five non-film SubjQA domains teach the span model that
style, but not film vocabulary, so on film reviews it mostly says "no answer".
This module finds such clauses in IMDB reviews with spaCy's parse and turns
each into a question about its aspect:

- "<aspect> is/was (not) <adjective phrase>"  -> "the special effects are wonderful"
- "I loved/liked/hated/enjoyed <aspect>"      -> "I loved this film"
- "this is a <adjective> <aspect>"            -> "a terrific cast"

The question names the aspect itself or a close word of its group ("How is the
movie?" for "This film was terrific"), because SubjQA's questions do too.
Unanswerable copies ask the question of a review with no clause about that
aspect group. The SubjQA movies dev file is never read here.
"""
from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from typing import Any

from eval_reader import Example, split_passages

# Aspect groups: a question may name any word of the clause's group.
ASPECT_GROUPS = {
    "film": ["film", "movie", "picture", "flick", "show", "series", "episode", "sequel", "story"],
    "cast": ["cast", "acting", "actors", "actor", "actress", "performance", "performances", "casting"],
    "story": ["story", "plot", "storyline", "script", "writing", "screenplay", "premise"],
    "music": ["music", "soundtrack", "score", "songs", "song"],
    "visuals": ["effects", "special effects", "visuals", "animation", "cinematography", "photography", "scenery",
                "sets", "costumes"],
    "dvd": ["sound", "audio", "picture quality", "video", "dvd", "transfer", "quality", "extras", "image"],
    "characters": ["characters", "character", "dialogue", "dialog", "humor", "comedy", "action", "ending",
                   "direction", "pacing", "scenes", "scene", "villain", "hero"],
}
WORD_GROUP = {w: g for g, words in ASPECT_GROUPS.items() for w in words}
WORD_GROUP.update({"films": "film", "movies": "film", "shows": "film", "episodes": "film", "stories": "story",
                   "effect": "visuals", "sfx": "visuals", "cgi": "visuals", "actresses": "cast", "plots": "story",
                   "scripts": "story"})

TEMPLATES = ["How is the {a}?", "How was the {a}?", "How is {a}?", "How are the {a}?", "How were the {a}?",
             "Is the {a} good?", "Was the {a} good?", "What do you think about the {a}?", "How would you rate the {a}?",
             "What is the quality of the {a}?", "How do you like the {a}?", "What about the {a}?", "Is the {a} great?",
             "How good is the {a}?", "What is the {a} like?", "How is the {a} of the movie?", "Is {a} good?",
             "Did you like the {a}?", "Is the {a} interesting?", "How bad is the {a}?"]
OPINION_VERBS = {"love", "like", "enjoy", "hate", "dislike", "adore", "recommend", "appreciate"}
PREFILTER = re.compile(r"\b(?:the|this|that|its|The|This|a|an|great|terrific|good|bad)\s(?:\w+\s)?(?:"
                       + "|".join(sorted({w for w in WORD_GROUP if " " not in w}))
                       + r")\b(?:\s(?:is|was|are|were)\b)?")
MAX_ANSWER_TOKENS = 14
PER_REVIEW = 3  # clauses kept per review, so that a few long reviews do not dominate
UNANSWERABLE_SHARE = 0.25
HELD_OUT_SHARE = 0.15


def _aspect(token: Any) -> str | None:
    """The aspect group of a noun (its lemma or text), or None when it is not about films."""
    for key in (token.lower_, token.lemma_.lower()):
        if key in WORD_GROUP:
            return key
    return None


def _trim(span: Any) -> Any:
    while len(span) and (span[-1].is_punct or span[-1].dep_ in ("cc", "punct")):
        span = span[:-1]
    while len(span) and (span[0].is_punct or span[0].dep_ == "cc"):
        span = span[1:]
    return span


def opinion_clauses(doc: Any) -> list[tuple[str, Any]]:
    """``(aspect word, answer span)`` for every opinion clause about a film aspect in one parsed passage."""
    out = []
    for tok in doc:
        # "<aspect> is/was (not) <adjective phrase>": subject through the adjective's subtree
        if tok.dep_ == "acomp" and tok.head.lemma_ == "be":
            subjects = [c for c in tok.head.children if c.dep_ == "nsubj"]
            if subjects and (aspect := _aspect(subjects[0])):
                out.append((aspect, _trim(doc[subjects[0].left_edge.i : tok.right_edge.i + 1])))
        # "I loved/liked this film"
        elif tok.dep_ == "dobj" and tok.head.lemma_ in OPINION_VERBS and (aspect := _aspect(tok)):
            subjects = [c for c in tok.head.children if c.dep_ == "nsubj"]
            start = subjects[0].left_edge.i if subjects else tok.head.i
            out.append((aspect, _trim(doc[start : tok.right_edge.i + 1])))
        # "this is a terrific cast" / "one of the best films ever made"
        elif tok.dep_ == "attr" and tok.head.lemma_ == "be" and (aspect := _aspect(tok)):
            if any(c.dep_ == "amod" for c in tok.children):  # up to the aspect word: "a great ending"
                out.append((aspect, _trim(doc[tok.left_edge.i : tok.i + 1])))
    return [(a, s) for a, s in out if 2 <= len(s) <= MAX_ANSWER_TOKENS]


def _share(title: str) -> float:
    """A stable number in [0, 1) for a title."""
    return int(hashlib.sha256(title.encode("utf-8")).hexdigest()[:8], 16) / 16**8


def _question(aspect: str, rng: random.Random) -> str:
    word = aspect if rng.random() < 0.6 else rng.choice(ASPECT_GROUPS[WORD_GROUP[aspect]])
    question = rng.choice(TEMPLATES).format(a=word)
    return question.lower() if rng.random() < 0.15 else question


def opinion_examples(nlp: Any, reviews: list[dict[str, Any]], held_titles: set[str], rng: random.Random,
                     max_reviews: int, skip: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, held-out) subjective questions; films in ``held_titles`` (and a share of the rest) are held out.

    The reviews are those with film opinion phrases, in a fixed shuffled order: the
    ``max_reviews`` after the first ``skip`` (a later training round can skip the
    reviews earlier rounds learned from).
    """
    matching = [r for r in reviews if len(PREFILTER.findall(r["text"])) >= 2]
    rng.shuffle(matching)
    chosen = sorted(matching[skip : skip + max_reviews], key=lambda r: r["id"])
    print(f"reviews with film opinion phrases: {len(matching)}; parsing {len(chosen)} after the first {skip}",
          flush=True)
    passages = {r["id"]: split_passages(r["id"], r["text"]) for r in chosen}
    docs = nlp.pipe([p.text for r in chosen for p in passages[r["id"]]])
    groups_of: dict[str, set[str]] = defaultdict(set)
    examples: list[Example] = []
    i = 0
    for r in chosen:
        n = len(passages[r["id"]])
        clauses = [c for doc in docs[i : i + n] for c in opinion_clauses(doc)]
        i += n
        groups_of[r["id"]] = {WORD_GROUP[a] for a, _ in clauses}
        rng.shuffle(clauses)
        for k, (aspect, span) in enumerate(clauses[:PER_REVIEW]):
            examples.append(Example(f"opinion-{r['id']}-{k}", _question(aspect, rng), passages[r["id"]], [span.text],
                                    "subjective", {"title": r["imdb_title"], "group": WORD_GROUP[aspect]}))
    # Unanswerable copies: the same question of a review that says nothing about that aspect group.
    ids = sorted(passages)
    for ex in list(examples):
        if rng.random() < UNANSWERABLE_SHARE:
            other = rng.choice(ids)
            if ex.extra["group"] not in groups_of[other] and other != ex.passages[0].document_id:
                examples.append(Example(ex.id + "-na", ex.question, passages[other], [], "subjective-na", ex.extra))
    # By a hash of the title, so a film stays on its side however many reviews are parsed.
    held = held_titles | {ex.extra["title"] for ex in examples if _share(ex.extra["title"]) < HELD_OUT_SHARE}
    train = [ex for ex in examples if ex.extra["title"] not in held]
    test = [ex for ex in examples if ex.extra["title"] in held]
    print(f"subjective questions: {len(train)} train, {len(test)} held out "
          f"({sum(bool(e.answers) for e in train)} answerable in train)", flush=True)
    return train, test
