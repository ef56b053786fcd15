"""The reader's training data: pairs cut as the product cuts passages, targets on the right tokens,
and film questions that are true to their reviews and apart from every benchmark."""
from __future__ import annotations

import json
import random

import pytest

from benchmarks._common import imdb_texts, read_jsonl
from tests.conftest import ROOT, shared_data
from training.train_reader import FILM_QUESTIONS, Pair, features_of, question_form, review_pairs, save_weights

pytestmark = pytest.mark.unit

REVIEW = ("Jane Doe directs this thriller about a lighthouse keeper and his estranged daughter.\n\n"
          "The keeper is played by Tom Brand, who is wonderful, and the daughter by Ann Lee.")


def test_review_pairs_mark_the_passage_that_holds_the_answer():
    pairs = review_pairs(random.Random(0), "who plays the keeper", "r1", REVIEW, ["Tom Brand"])
    answered = [p for p in pairs if p.start is not None]
    assert len(answered) == 1
    assert answered[0].context[answered[0].start:answered[0].end] == "Tom Brand"
    assert "lighthouse" not in answered[0].context  # the other paragraph is its own passage


def test_an_unanswerable_question_is_no_answer_in_every_passage():
    pairs = review_pairs(random.Random(0), "how long is it", "r1", REVIEW, [])
    assert len(pairs) == 2 and all(p.start is None for p in pairs)


def test_question_form_toggles_only_the_question_mark():
    rng = random.Random(0)
    forms = {question_form("Who directed Jaws ?", rng) for _ in range(40)}
    assert forms == {"Who directed Jaws", "Who directed Jaws?"}
    assert {question_form("who plays sera", rng) for _ in range(40)} == {"who plays sera", "who plays sera?"}


def test_window_targets_point_at_the_answer_tokens():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ROOT / "qa" / "reading" / "span_model"))
    context = REVIEW.split("\n\n")[1]
    start = context.index("Ann Lee")
    feats = features_of(tokenizer, [Pair("who plays the daughter", context, start, start + 7),
                                    Pair("who composed the score", context, None, None)], 384, 128)
    ids = feats[0]["input_ids"][feats[0]["start"]: feats[0]["end"] + 1]
    assert tokenizer.decode(ids) == "ann lee"
    assert feats[1]["start"] == feats[1]["end"] == 0  # [CLS]: no answer


def test_new_weights_keep_the_passage_prior_and_drop_a_stale_calibration(tmp_path):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    init = ROOT / "qa" / "reading" / "span_model"
    out = tmp_path / "model"
    out.mkdir()
    (out / "reader.json").write_text(json.dumps({"calibration": {"a": 9, "b": 9}, "no_answer_threshold": 0.9}))
    model = AutoModelForQuestionAnswering.from_pretrained(str(init))
    save_weights(model, AutoTokenizer.from_pretrained(str(init)), out, 384, 128, init)
    config = json.loads((out / "reader.json").read_text())
    assert config["passage_prior"] == json.loads((init / "reader.json").read_text())["passage_prior"]
    assert "calibration" not in config and "no_answer_threshold" not in config
    assert (out / "model.safetensors").exists()


def test_film_questions_are_spans_of_their_reviews_and_apart_from_the_benchmarks():
    shared_data("imdb-reviews", "reviews.jsonl.gz")  # skip without the shared data
    rows = read_jsonl(FILM_QUESTIONS)
    assert len(rows) >= 5000
    texts = imdb_texts({r["review_id"] for r in rows})
    for r in rows:
        for a in r["answers"]:
            assert texts[r["review_id"]][a["start"]:a["end"]] == a["text"], r
    benchmark_films = {q["imdb_title"] for q in read_jsonl(ROOT / "benchmarks" / "natural" / "imdb.jsonl")}
    benchmark_films |= {q["imdb_title"] for q in read_jsonl(ROOT / "benchmarks" / "natural" / "films.jsonl")}
    benchmark_films |= {q["imdb_title"] for q in read_jsonl(shared_data("imdb-reviews", "factual-qa-dev.jsonl"))}
    assert not benchmark_films & {r["imdb_title"] for r in rows}
