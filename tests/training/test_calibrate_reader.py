"""Calibration fitting: the fitted scores follow how often answers are right, and never reverse their order."""
from __future__ import annotations

import random

import pytest

from benchmarks.reader_bench import Record
from qa.reading.transformer import calibrate
from training.calibrate_reader import calibrated, choose_threshold, fit_calibration, reliability

pytestmark = pytest.mark.unit


def _records(rng: random.Random, n: int, right_at) -> list[Record]:
    """Answers with raw score p that are right with probability ``right_at(p)``, split over two sets."""
    out = []
    for i in range(n):
        p = rng.random()
        right = rng.random() < right_at(p)
        out.append(Record("documents" if i % 2 else "imdb", f"q{i}", "cast", "dev", True, "x", p,
                          1.0 if right else 0.0))
    return out


def test_the_fit_makes_scores_match_how_often_answers_are_right():
    rng = random.Random(0)
    # raw scores far too low in the middle: right 40% of the time at p = 0.05, 85% at p = 0.5
    right_at = lambda p: min(1.0, 0.4 + 0.9 * p)  # noqa: E731
    raw = _records(rng, 4000, right_at)
    fitted = calibrated(raw, fit_calibration(raw))
    assert reliability(fitted)[0] < 0.03 < reliability(raw)[0]


def test_the_fitted_coefficients_never_let_a_higher_raw_score_rank_lower():
    rng = random.Random(1)
    # right more often at *low* raw scores: the best a monotone calibration can do is hold its shape
    raw = _records(rng, 2000, lambda p: 0.9 - 0.5 * p)
    calibration = fit_calibration(raw)
    assert calibration["a"] >= 0 and calibration["b"] >= 0
    scores = [calibrate(p, calibration["a"], calibration["b"], calibration["c"]) for p in (0.01, 0.3, 0.6, 0.99)]
    assert scores == sorted(scores)


def test_the_threshold_declines_what_is_more_often_wrong_than_right():
    records = [Record("imdb", f"a{i}", "cast", "dev", True, "x", 0.9, 1.0) for i in range(10)]
    records += [Record("imdb", f"u{i}", "unanswerable", "dev", False, "x", 0.2, 0.0) for i in range(10)]
    assert 0.2 < choose_threshold(records) <= 0.9
