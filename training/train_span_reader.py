"""Learn the span reader's weights and no-answer threshold.

    .venv/bin/python training/train_span_reader.py [--out qa/data/span_reader.json]

Training data (the two dev files of the project are never read here):

* SubjQA, non-film domains, ``*-train.jsonl``: opinion questions over product,
  hotel and restaurant reviews, about 40% of them unanswerable.
* Synthetic factual questions generated from IMDB reviews by film-review
  patterns ("Peter Ustinov as Kaptah" -> "who plays kaptah" / "Peter Ustinov";
  "directed by X"; "based on the novel by X"; "set in X"; "made in 1938";
  "a rip-off of X"; "the direction is dull" -> "what does the reviewer think of
  the direction"). Reviews of the films in factual-qa-dev.jsonl are left out.
  A quarter of the synthetic questions are asked of another review, as
  unanswerable examples.

Every candidate span the reader proposes becomes a training row, labelled 1 when
its token F1 with a gold answer is at least 0.5 (SQuAD normalisation), so the
model's output is the probability that the span is right. One logistic
regression per answer type (person, date, place, work, phrase). The no-answer
threshold is chosen to maximise F1 (with the no-answer rule) on SubjQA-other
``*-dev.jsonl``. Held-out figures (SubjQA-other dev, a held-out 15% of the
synthetic reviews) are printed. Deterministic: fixed seeds, sorted inputs.

spaCy docs and embeddings are cached in ``--cache`` (default
/tmp/span_reader_cache) so that reruns are fast; the cache does not change results.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import pickle
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from eval_reader import (  # noqa: E402
    FACTUAL_DEV,
    IMDB_REVIEWS,
    SHARED,
    Example,
    best_over_golds,
    exact_match,
    split_passages,
    token_f1,
)
from qa.answer_types import AnswerType  # noqa: E402
from qa.span_reader import FEATURES, SpanReader, load_embedder, load_nlp  # noqa: E402

SEED = 13
SUBJQA_OTHER = SHARED / "subjqa-other"
POSITIVE_F1 = 0.5  # a phrase candidate is "right" when its token F1 with a gold answer is >= 0.5
POSITIVE_F1_TYPED = 0.8  # person, date, place and title answers must be (nearly) exact
SYNTHETIC_PER_KIND = 900  # cap per synthetic question kind (keeps parsing time to minutes)
SYNTHETIC_OPINION = 600  # fewer opinion questions: SubjQA already covers the phrase type
UNANSWERABLE_SHARE = 0.25
HELD_OUT_SHARE = 0.15
C_REGULARISATION = 1.0  # sklearn's default; a check of 0.1/1/10 on held-out synthetic data moved F1 < 0.01


# --------------------------------------------------------------------------- caching


class CachedNlp:
    """Wraps the spaCy pipeline with a text -> Doc cache (stored as DocBin bytes)."""

    def __init__(self, nlp: Any, path: Path) -> None:
        self.nlp = nlp
        self.path = path
        self.cache: dict[str, Any] = {}
        if path.exists():
            from spacy.tokens import DocBin

            texts, data = pickle.loads(path.read_bytes())
            docs = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
            self.cache = dict(zip(texts, docs))
        self.dirty = False

    def __call__(self, text: str) -> Any:
        return next(iter(self.pipe([text])))

    def pipe(self, texts: Iterable[str]) -> Iterable[Any]:
        texts = list(texts)
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            for t, doc in zip(missing, self.nlp.pipe(missing, batch_size=64)):
                self.cache[t] = doc
            self.dirty = True
        return [self.cache[t] for t in texts]

    def save(self) -> None:
        if not self.dirty:
            return
        from spacy.tokens import DocBin

        texts = list(self.cache)
        doc_bin = DocBin(attrs=["ORTH", "LEMMA", "POS", "TAG", "DEP", "HEAD", "ENT_IOB", "ENT_TYPE", "SENT_START", "IS_STOP"],
                         store_user_data=False)
        for t in texts:
            doc_bin.add(self.cache[t])
        self.path.write_bytes(pickle.dumps((texts, doc_bin.to_bytes())))


class CachedEmbedder:
    """Wraps the embedder with a text -> vector cache."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], path: Path) -> None:
        self.embed = embed
        self.path = path
        self.cache: dict[str, np.ndarray] = pickle.loads(path.read_bytes()) if path.exists() else {}
        self.dirty = False

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            for t, v in zip(missing, self.embed(missing)):
                self.cache[t] = v.astype(np.float32)
            self.dirty = True
        return np.vstack([self.cache[t] for t in texts])

    def warm(self, texts: list[str]) -> None:
        self(texts)

    def save(self) -> None:
        if self.dirty:
            self.path.write_bytes(pickle.dumps(self.cache))


# --------------------------------------------------------------------------- SubjQA


def load_subjqa_other(split: str) -> list[Example]:
    out = []
    for path in sorted(SUBJQA_OTHER.glob(f"*-{split}.jsonl")):
        for line in path.open():
            r = json.loads(line)
            out.append(Example(r["id"], r["question"], split_passages(r["review_id"], r["review"]),
                               [a["text"] for a in r["answers"]], "subjqa-" + r["domain"]))
    return out


# --------------------------------------------------------------------------- synthetic factual questions

_CAP = r"[A-Z][\w'-]*(?<!'s)"
_NAME = rf"{_CAP}(?:\s+{_CAP}){{0,3}}"
# Cheap regex filters that pick the reviews worth parsing, per kind of question.
PREFILTERS = {
    "who-plays": re.compile(r"[a-z]+ [A-Z][a-z]+ as [A-Z]|[A-Z][a-z]+ \([A-Z][a-z]+ [A-Z][a-z]+\)"),
    "director": re.compile(r"[Dd]irected by [A-Z]|[Dd]irector [A-Z]"),
    "based-on": re.compile(r"(?:novel|story|book|play|novella) (?:written )?by [A-Z]|(?:based on|adapted from) (?:the |a )"),
    "setting": re.compile(r"\b(?:set|takes place|filmed|shot|located) in (?:the )?[A-Z]"),
    "year": re.compile(r"(?:made|released|set|filmed) in (?:19|20)\d\d|[A-Z]\w+ \((?:19|20)\d\d\)"),
    "other-work": re.compile(r"(?:rip-?off|remake|copy|clone) of (?:the )?[A-Z\"]|similar to (?:the )?[A-Z\"]"),
}
REVIEWS_PER_FILTER = 1200  # parsing ~4,500 reviews takes a few minutes on 2 cores

ROLE_TEMPLATES = ["who plays {c}", "who played {c}", "who is {c}", "who's {c} in the movie", "Who played {c} in {t}?",
                  "who plays {c} in {t}", "who voices {c}", "who portrays {c}"]
DIRECTOR_TEMPLATES = ["who directed {t}", "Who directed {t}?", "who made {t}", "who was the director of {t}",
                      "which director made {t}"]
AUTHOR_TEMPLATES = ["{t} is based on a {w} by who", "who wrote the {w} {t} is based on", "{t} was adapted from a {w} by whom",
                    "which author wrote the {w} behind {t}", "who is the author of the {w} {t} is based on"]
SOURCE_TEMPLATES = ["which {w} is {t} based on", "what {w} is {t} adapted from", "what {w} is the film based on",
                    "which {w} was {t} derived from"]
SIMILAR_TEMPLATES = ["which film is {t} similar to", "what movie is {t} a {r} of", "which movie does {t} copy",
                     "what film is this {r} of"]
SETTING_TEMPLATES = ["where is {t} set", "where does {t} take place", "where is the film set", "where was {t} filmed",
                     "Where is {t} set?"]
YEAR_TEMPLATES = ["what year was {t} made", "what year is {t} set in", "when was {t} released", "in what year is {t} set",
                  "what year was the film made"]
OPINION_TEMPLATES = ["what does the reviewer think of {x}", "how was {x}", "how is {x} in {t}", "what about {x}",
                     "what does the reviewer say about {x}"]


def _film_title(docs: list[Any], rng: random.Random) -> str:
    """A title for the question: 'Title (1941)' or a WORK_OF_ART in the review, else a generic phrase."""
    for doc in docs:
        m = re.search(rf"({_NAME})\s*\((?:19|20)\d\d\)", doc.text)
        if m:
            return m.group(1)
    for doc in docs:
        for ent in doc.ents:
            if ent.label_ == "WORK_OF_ART" and 1 <= len(ent) <= 6:
                return ent.text.strip("\"'")
    return rng.choice(["the film", "the movie", "this movie", "it"])


def _ent_ending_at(doc: Any, char: int, label: str) -> Any | None:
    for ent in doc.ents:
        if ent.label_ == label and ent.end_char == char:
            return ent
    return None


def _ent_starting_at(doc: Any, char: int, labels: set[str]) -> Any | None:
    for ent in doc.ents:
        if ent.label_ in labels and ent.start_char == char:
            return ent
    return None


def _maybe_lower(text: str, rng: random.Random) -> str:
    return text.lower() if rng.random() < 0.5 else text


def generate_questions(docs: list[Any], rng: random.Random) -> list[tuple[str, str, str]]:
    """``(kind, question, answer)`` triples found in one review's passages."""
    title = _film_title(docs, rng)
    out: list[tuple[str, str, str]] = []
    for doc in docs:
        text = doc.text
        # who-plays: "X as Y", "Y (X)", "X plays Y"
        for m in re.finditer(rf"({_NAME}) (?:as|plays|portrays|voices) (?:the )?({_NAME})", text):
            ent = _ent_ending_at(doc, m.end(1), "PERSON")
            if ent is not None and ent.start_char <= m.start(1) + 40 and not _ent_starting_at(doc, m.start(2), {"GPE", "ORG", "DATE"}):
                out.append(("who-plays", rng.choice(ROLE_TEMPLATES).format(c=_maybe_lower(m.group(2), rng), t=title), ent.text))
        for m in re.finditer(rf"({_NAME}) \(({_NAME})\)", text):
            ent = _ent_starting_at(doc, m.start(2), {"PERSON"})
            # Actors in brackets have a full name; "Erika Christensen (Deanna)" is the other way round.
            if ent is not None and ent.end_char == m.end(2) and len(ent) >= 2:
                character = " ".join(m.group(1).split()[-2:])
                out.append(("who-plays", rng.choice(ROLE_TEMPLATES).format(c=_maybe_lower(character, rng), t=title), ent.text))
        # director
        for m in re.finditer(r"(?:[Dd]irected by|[Dd]irector) ", text):
            ent = _ent_starting_at(doc, m.end(), {"PERSON"})
            if ent is not None:
                out.append(("director", rng.choice(DIRECTOR_TEMPLATES).format(t=_maybe_lower(title, rng)), ent.text))
        # based-on: author and source work
        for m in re.finditer(r"(novel|book|short story|story|play|novella)(?: written)? by ", text):
            ent = _ent_starting_at(doc, m.end(), {"PERSON"})
            if ent is not None:
                out.append(("based-on", rng.choice(AUTHOR_TEMPLATES).format(t=_maybe_lower(title, rng), w=m.group(1)), ent.text))
        for m in re.finditer(rf"(?:based on|adapted from|adaptation of) (?:the |a |an )?(?:\w+ )?(novel|book|short story|story|play|novella)(?:,)? (?:\"([^\"]{{2,60}})\"|({_NAME}))", text):
            answer = m.group(2) or m.group(3)
            if answer and answer.split()[0] not in ("by", "By"):
                out.append(("based-on-work", rng.choice(SOURCE_TEMPLATES).format(t=_maybe_lower(title, rng), w=m.group(1)), answer))
        # similar / rip-off
        for m in re.finditer(rf"(rip-?off|remake|copy|clone) of (?:the )?(?:\"([^\"]{{2,60}})\"|({_NAME}))|similar to (?:the )?(?:\"([^\"]{{2,60}})\"|({_NAME}))", text):
            answer = next(g for g in m.groups()[1:] if g)
            kind = m.group(1) or "rip-off"
            if len(answer) > 2 and answer.split()[0] not in ("I", "The", "A"):
                out.append(("other-work", rng.choice(SIMILAR_TEMPLATES).format(t=_maybe_lower(title, rng), r=kind.lower()), answer))
        # setting and year
        for tok in doc:
            if tok.lower_ not in ("set", "place", "filmed", "shot", "located", "made", "released"):
                continue
            for prep in tok.rights if tok.lower_ != "place" else tok.rights:
                if prep.dep_ != "prep" or prep.lower_ != "in":
                    continue
                objs = [c for c in prep.children if c.dep_ == "pobj"]
                if not objs:
                    continue
                obj = objs[0]
                if re.fullmatch(r"(1[89]|20)\d\d", obj.text):
                    template = rng.choice(YEAR_TEMPLATES)
                    out.append(("year", template.format(t=_maybe_lower(title, rng)), obj.text))
                    continue
                if tok.lower_ in ("made", "released"):
                    continue
                right = obj.right_edge.i + 1
                for child in obj.rights:
                    if child.dep_ in ("relcl", "acl", "advcl", "prep") and child.lower_ not in ("of",):
                        right = child.left_edge.i
                        break
                span = doc[obj.left_edge.i : right]
                while len(span) and span[-1].is_punct:
                    span = span[:-1]
                has_place = any(e.label_ in ("GPE", "LOC", "FAC") for e in span.ents)
                if 1 <= len(span) <= 12 and has_place:
                    out.append(("setting", rng.choice(SETTING_TEMPLATES).format(t=_maybe_lower(title, rng)), span.text))
        for m in re.finditer(rf"({_NAME}) \(((?:19|20)\d\d)\)", text):
            out.append(("year", rng.choice(YEAR_TEMPLATES[:1] + YEAR_TEMPLATES[2:3]).format(t=m.group(1)), m.group(2)))
        # opinion: "<subject> is/was (adv) ADJ ..."
        for tok in doc:
            if tok.dep_ != "acomp" or tok.head.lemma_ != "be":
                continue
            subjects = [c for c in tok.head.children if c.dep_ == "nsubj" and c.pos_ in ("NOUN", "PROPN")]
            if not subjects:
                continue
            subj = doc[subjects[0].left_edge.i : subjects[0].right_edge.i + 1]
            answer_toks = doc[tok.left_edge.i : tok.right_edge.i + 1]
            advs = [c for c in tok.head.children if c.dep_ == "advmod" and c.i == answer_toks.start - 1]
            start = advs[0].i if advs else answer_toks.start
            answer = doc[start : answer_toks.end]
            if 1 <= len(subj) <= 6 and 1 <= len(answer) <= 10:
                out.append(("opinion", rng.choice(OPINION_TEMPLATES).format(x=_maybe_lower(subj.text, rng), t=title), answer.text))
    return out


def load_imdb_reviews(excluded_titles: set[str], excluded_ids: set[str]) -> list[dict[str, Any]]:
    reviews = []
    with gzip.open(IMDB_REVIEWS, "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["id"] in excluded_ids or d["imdb_title"] in excluded_titles:
                continue
            reviews.append(d)
    return reviews


def synthetic_examples(nlp: CachedNlp, rng: random.Random, max_reviews: int) -> tuple[list[Example], list[Example]]:
    """Synthetic factual questions: (train, held-out), split by film."""
    dev = [json.loads(line) for line in FACTUAL_DEV.open()]
    reviews = load_imdb_reviews({r["imdb_title"] for r in dev}, {r["review_id"] for r in dev})
    print(f"IMDB reviews after leaving out the factual-dev films: {len(reviews)}")
    chosen: dict[str, dict[str, Any]] = {}
    for kind, pattern in PREFILTERS.items():
        matching = [r for r in reviews if pattern.search(r["text"])]
        rng.shuffle(matching)
        for r in matching[:max_reviews]:
            chosen[r["id"]] = r
        print(f"   prefilter {kind:11s}: {len(matching)} reviews match")
    hits = sorted(chosen.values(), key=lambda r: r["id"])
    rng.shuffle(hits)
    print(f"reviews parsed for synthetic questions: {len(hits)}")
    passages = {r["id"]: split_passages(r["id"], r["text"]) for r in hits}
    t = time.time()
    all_docs = nlp.pipe([p.text for r in hits for p in passages[r["id"]]])
    print(f"   parsed in {time.time() - t:.0f} s")
    i = 0
    by_kind: dict[str, list[Example]] = defaultdict(list)
    for r in hits:
        n = len(passages[r["id"]])
        docs, i = all_docs[i : i + n], i + n
        seen = set()
        for kind, question, answer in generate_questions(docs, rng):
            if (kind, answer) in seen:
                continue
            seen.add((kind, answer))
            by_kind[kind].append(Example(f"syn-{kind}-{r['id']}-{len(seen)}", question, passages[r["id"]], [answer], kind,
                                         {"title": r["imdb_title"]}))
    examples: list[Example] = []
    for kind in sorted(by_kind):
        cap = SYNTHETIC_OPINION if kind == "opinion" else SYNTHETIC_PER_KIND
        chosen = by_kind[kind][:cap]
        print(f"   synthetic {kind:14s} {len(by_kind[kind]):5d} found, {len(chosen)} used")
        examples += chosen
    # Unanswerable copies: the question asked of another review that does not contain the answer.
    review_ids = sorted(passages)
    for ex in list(examples):
        if rng.random() < UNANSWERABLE_SHARE:
            other = passages[rng.choice(review_ids)]
            if any(ex.answers[0].lower() in p.text.lower() for p in other) or other[0].document_id == ex.passages[0].document_id:
                continue
            examples.append(Example(ex.id + "-na", ex.question, other, [], ex.kind + "-na", ex.extra))
    titles = sorted({ex.extra["title"] for ex in examples})
    rng.shuffle(titles)
    held = set(titles[: int(len(titles) * HELD_OUT_SHARE)])
    train = [ex for ex in examples if ex.extra["title"] not in held]
    test = [ex for ex in examples if ex.extra["title"] in held]
    return train, test


# --------------------------------------------------------------------------- features, fitting, threshold


def featurize_all(reader: SpanReader, examples: list[Example]) -> list[tuple[Example, Any, list[Any], np.ndarray, np.ndarray]]:
    """For each example: (example, question info, candidates, features, candidate F1 with the gold)."""
    out = []
    for ex in examples:
        info, cands, X = reader.featurize(ex.question, ex.passages)
        texts = [ex.passages[c.passage_index].text[c.start : c.end] for c in cands]
        f1 = np.array([best_over_golds(token_f1, t, ex.answers) for t in texts], dtype=np.float32)
        out.append((ex, info, cands, X.astype(np.float32), f1))
    return out


def fit_models(rows: list[tuple[Example, Any, list[Any], np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """One logistic regression per answer type on all candidates."""
    models = {}
    for answer_type in AnswerType:
        part = [r for r in rows if r[1].answer_type is answer_type and len(r[2])]
        X = np.vstack([r[3] for r in part])
        y = np.concatenate([r[4] for r in part]) >= (POSITIVE_F1 if answer_type is AnswerType.PHRASE
                                                     else POSITIVE_F1_TYPED)
        clf = LogisticRegression(C=C_REGULARISATION, max_iter=5000, random_state=SEED)
        clf.fit(X, y)
        models[answer_type.value] = {"coef": [round(float(c), 6) for c in clf.coef_[0]],
                                     "intercept": round(float(clf.intercept_[0]), 6),
                                     "n_questions": len(part), "n_candidates": int(len(y)), "n_positive": int(y.sum())}
        print(f"   {answer_type.value:7s} questions {len(part):5d}  candidates {len(y):7d}  positive {int(y.sum()):6d}")
    return models


def top_predictions(reader: SpanReader, rows: list[tuple[Example, Any, list[Any], np.ndarray, np.ndarray]]) -> list[tuple[Example, float, str, float]]:
    """(example, best score, best text, F1 of best text) per example."""
    out = []
    for ex, info, cands, X, f1 in rows:
        if not cands:
            out.append((ex, 0.0, "", 0.0))
            continue
        scores = reader.score(info, X)
        i = int(np.argmax(scores))
        text = ex.passages[cands[i].passage_index].text[cands[i].start : cands[i].end]
        out.append((ex, float(scores[i]), text, float(f1[i])))
    return out


def fit_calibration(reader: SpanReader, rows: list[tuple[Example, Any, list[Any], np.ndarray, np.ndarray]]
                    ) -> dict[str, dict[str, float]]:
    """Platt scaling per answer type: P(top answer right | its raw logit), on held-out questions.

    The per-candidate models under-state how often the best candidate of a typed
    question is right; this maps each type's scores onto one comparable scale.
    """
    reader.params.pop("calibration", None)
    by_type: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
    for ex, info, cands, X, f1 in rows:
        if not len(cands):
            continue
        scores = reader.score(info, X)
        i = int(np.argmax(scores))
        logit = float(np.log(scores[i] / max(1.0 - scores[i], 1e-9)))
        zs, ys = by_type[info.answer_type.value]
        zs.append(logit)
        ys.append(int(bool(ex.answers) and f1[i] >= POSITIVE_F1))
    calibration = {}
    for answer_type, (zs, ys) in sorted(by_type.items()):
        if len(set(ys)) < 2:
            continue
        clf = LogisticRegression(C=1e6, random_state=SEED).fit(np.array(zs).reshape(-1, 1), ys)
        calibration[answer_type] = {"a": round(float(clf.coef_[0][0]), 6), "b": round(float(clf.intercept_[0]), 6)}
        print(f"   calibration {answer_type:7s} n={len(ys):5d}  right {np.mean(ys):.2f}  "
              f"a={calibration[answer_type]['a']:.3f} b={calibration[answer_type]['b']:.3f}")
    return calibration


def metrics_at(preds: list[tuple[Example, float, str, float]], threshold: float) -> dict[str, float]:
    f1s, ems, ans, na = [], [], [], []
    for ex, score, text, f1 in preds:
        answered = score >= threshold
        if ex.answers:
            f = f1 if answered else 0.0
            e = best_over_golds(exact_match, text, ex.answers) if answered else 0.0
            ans.append(f)
        else:
            f = e = float(not answered)
            na.append(f)
        f1s.append(f)
        ems.append(e)
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")  # noqa: E731
    return {"em": mean(ems), "f1": mean(f1s), "answerable_f1": mean(ans), "no_answer_acc": mean(na)}


def choose_threshold(preds: list[tuple[Example, float, str, float]]) -> float:
    """The threshold on a grid of 0.01 that maximises F1 (ties: the lowest)."""
    grid = [round(0.01 * i, 2) for i in range(1, 100)]
    return max(grid, key=lambda t: (round(metrics_at(preds, t)["f1"], 6), -t))


def calibration_table(preds: list[tuple[Example, float, str, float]]) -> None:
    """Mean score vs share of right top answers (F1 >= 0.5) in score bins."""
    bins = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01]
    for lo, hi in zip(bins, bins[1:]):
        sel = [(s, f >= POSITIVE_F1) for _, s, _, f in preds if lo <= s < hi]
        if sel:
            print(f"      score {lo:.1f}-{min(hi, 1):.1f}: n={len(sel):5d}  mean score {np.mean([s for s, _ in sel]):.2f}  "
                  f"right {np.mean([r for _, r in sel]):.2f}")


def print_metrics(name: str, m: dict[str, float]) -> None:
    print(f"   {name:28s} EM {m['em']:.3f}  F1 {m['f1']:.3f}  answerable F1 {m['answerable_f1']:.3f}  "
          f"no-answer acc {m['no_answer_acc']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "qa" / "data" / "span_reader.json"))
    ap.add_argument("--cache", default="/tmp/span_reader_cache")
    ap.add_argument("--max-reviews", type=int, default=REVIEWS_PER_FILTER, help="IMDB reviews parsed per prefilter")
    ap.add_argument("--no-synthetic", action="store_true")
    ap.add_argument("--no-subjqa", action="store_true")
    args = ap.parse_args()

    random.seed(SEED)
    np.random.seed(SEED)
    rng = random.Random(SEED)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    nlp = CachedNlp(load_nlp(), cache / "docs.pkl")
    embedder = CachedEmbedder(load_embedder(), cache / "embeddings.pkl")
    reader = SpanReader(nlp=nlp, embedder=embedder, params_path=args.out)

    t0 = time.time()
    subj_train = [] if args.no_subjqa else load_subjqa_other("train")
    subj_dev = load_subjqa_other("dev")
    gold_lens = sorted(len(a.split()) for ex in subj_train for a in ex.answers)
    if gold_lens:
        print(f"SubjQA-other train: {len(subj_train)} questions, {sum(bool(e.answers) for e in subj_train)} answerable; "
              f"gold words median {gold_lens[len(gold_lens) // 2]}, 99th pct {gold_lens[int(0.99 * len(gold_lens))]}")
    print(f"SubjQA-other dev: {len(subj_dev)} questions")
    syn_train, syn_test = ([], []) if args.no_synthetic else synthetic_examples(nlp, rng, args.max_reviews)
    print(f"synthetic: {len(syn_train)} train, {len(syn_test)} held-out questions")
    nlp.save()

    print("featurizing ...")
    t = time.time()
    # Parse and embed in big batches first (the reader then hits the caches).
    all_examples = subj_train + subj_dev + syn_train + syn_test
    docs = nlp.pipe(sorted({p.text for ex in all_examples for p in ex.passages}))
    nlp.pipe(sorted({ex.question for ex in all_examples}))
    embedder.warm(sorted({s.text for doc in docs for s in doc.sents} | {ex.question for ex in all_examples}))
    nlp.save()
    embedder.save()
    train_rows = featurize_all(reader, subj_train + syn_train)
    dev_rows = featurize_all(reader, subj_dev)
    syn_test_rows = featurize_all(reader, syn_test)
    nlp.save()
    embedder.save()
    print(f"   {time.time() - t:.0f} s")

    print("fitting (logistic regression per answer type):")
    models = fit_models(train_rows)
    params = {"features": FEATURES, "models": models, "threshold": 0.5,
              "positive_f1": POSITIVE_F1, "seed": SEED}
    reader._params = params

    params["calibration"] = fit_calibration(reader, dev_rows + syn_test_rows)
    dev_preds = top_predictions(reader, dev_rows)
    threshold = choose_threshold(dev_preds + top_predictions(reader, syn_test_rows))
    params["threshold"] = threshold
    print(f"no-answer threshold (max F1 on SubjQA-other dev + synthetic held-out): {threshold:.2f}")
    print_metrics("SubjQA-other dev", metrics_at(dev_preds, threshold))
    calibration_table(dev_preds)
    syn_preds = top_predictions(reader, syn_test_rows)
    if syn_preds:
        print_metrics("synthetic held-out", metrics_at(syn_preds, threshold))
        by_kind: dict[str, list] = defaultdict(list)
        for p in syn_preds:
            by_kind[p[0].kind].append(p)
        for kind in sorted(by_kind):
            print_metrics(f"  synthetic {kind}", metrics_at(by_kind[kind], threshold))
        calibration_table(syn_preds)
    train_preds = top_predictions(reader, train_rows)
    print_metrics("training questions", metrics_at(train_preds, threshold))

    params["trained_on"] = {"subjqa_other_train": len(subj_train), "synthetic_train": len(syn_train)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(params, indent=1) + "\n")
    print(f"wrote {args.out} ({Path(args.out).stat().st_size} bytes) in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
