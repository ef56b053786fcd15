"""Make the span model's scores mean what they say, and choose its no-answer threshold.

    .venv/bin/python training/calibrate_reader.py [--model qa/reading/span_model] [--backend onnx-int8]

1. Every ``dev`` question of the natural sets (``benchmarks/natural/``: documents end to end, IMDB in
   reading mode) is answered with the uncalibrated model (``benchmarks/reader_bench.py`` does the
   answering).
2. Beta calibration (Kull, Silva Filho and Flach, 2017): ``P(right) = sigmoid(a * ln p - b * ln(1 - p)
   + c)`` for a raw score ``p``, where an answer is *right* when its F1 against the gold answers is at
   least 0.5 (an answer to a question that has none is wrong). It has one parameter more than Platt
   scaling (``a == b``), which on these questions left the middle scores too high and the top ones too
   low (natural dev ECE 0.080 fitted, 0.124 in two-fold cross-validation, against 0.036 and 0.091).
   The two sets weigh the same in the fit. Only the questions people type about films are fitted
   on: a probability is only right for the kind of question it was measured on, and SQuADShifts'
   questions, written by people looking at the paragraph, are answered right far more often at
   the same raw score (fitting on them too left both kinds off by 0.12-0.22).
3. The no-answer threshold (on the calibrated scale) is the one that maximises mean F1 over the
   answerable and unanswerable dev questions of the two natural sets together. With ``--null-margin
   M`` the model also proposes spans up to ``M`` (in logits) below its null answer, and the threshold
   alone decides whether they are shown; the margin goes into ``reader.json`` too.
   The pipeline's ``fuller_form_share`` (how close "Elisabeth Shue" must score to "Shue" to lead;
   ``qa.answering.pipeline.merge_answers``) is chosen with it: the documents dev questions are
   asked again end to end with the calibrated model for each share of ``FULLER_FORM_SHARES``, and
   the share and threshold with the best natural dev F1 win (a tie keeps the earliest share of the
   list, the old constant 0.5 first).
4. All of them go into the model's ``reader.json``. Then the ``test`` halves (and SQuADShifts' held-out
   ``test`` half and ``benchmarks/natural/films.jsonl``, for comparison) are answered and the
   expected calibration error (10 equal-width bins) is reported on them, with a reliability diagram
   written to ``--diagram`` (needs matplotlib: ``pip install '.[train]'``).

``--dev-only`` is for choosing between models: it fits and chooses as above, then reports the dev
halves, ``benchmarks/natural/films.jsonl`` and SQuADShifts' held-out ``dev`` half at that fit and
threshold, and writes nothing: no test question is read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.reader_bench import Record, collect, f1_at, load_reader, report  # noqa: E402
from qa.reading.transformer import calibrate, reader_config  # noqa: E402

CALIBRATION_SETS = ("documents", "imdb")
REPORT_SETS = ("documents", "imdb", "films", "squadshifts")
RIGHT_F1 = 0.5
BINS = 10
FULLER_FORM_SHARES = (0.5, 0.3, 0.7, 1.0)


def is_right(r: Record) -> bool:
    return r.answerable and r.f1 >= RIGHT_F1


def fit_calibration(records: Sequence[Record]) -> dict[str, float]:
    """Beta calibration (``qa.reading.transformer.calibrate``) fitted on the records that have a span,
    each set weighing the same: a logistic regression of *right* on ``ln p`` and ``-ln(1 - p)``.

    A coefficient that comes out negative would make the score fall as ``p`` rises; as in the
    authors' ``betacal``, it is then held at 0 and the other refitted."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rows = [r for r in records if r.text is not None and r.score > 0]
    per_set = {s: sum(r.set == s for r in rows) for s in {r.set for r in rows}}
    p = np.clip(np.array([r.score for r in rows]), 1e-6, 1 - 1e-6)
    x = np.stack([np.log(p), -np.log(1 - p)], axis=1)
    y = np.array([int(is_right(r)) for r in rows])
    w = np.array([1.0 / per_set[r.set] for r in rows])
    w = w * len(rows) / w.sum()
    clf = LogisticRegression(C=1e4).fit(x, y, sample_weight=w)
    coef = [float(v) for v in clf.coef_[0]]
    if min(coef) < 0:
        keep = int(coef[1] > coef[0])
        clf = LogisticRegression(C=1e4).fit(x[:, [keep]], y, sample_weight=w)
        coef = [0.0, 0.0]
        coef[keep] = max(0.0, float(clf.coef_[0][0]))
    return {"a": round(coef[0], 6), "b": round(coef[1], 6), "c": round(float(clf.intercept_[0]), 6)}


def calibrated(records: Sequence[Record], calibration: dict[str, float]) -> list[Record]:
    from dataclasses import replace

    return [replace(r, score=calibrate(r.score, calibration["a"], calibration["b"], calibration["c"]))
            for r in records]


def choose_threshold(records: Sequence[Record]) -> float:
    grid = [round(0.01 * i, 2) for i in range(0, 100)]
    best = max(f1_at(records, t) for t in grid)
    # the middle of the best plateau, so that a tie does not sit on its edge
    plateau = [t for t in grid if f1_at(records, t) >= best - 1e-9]
    return plateau[len(plateau) // 2]


def choose_share_and_threshold(reader, raw: Sequence[Record], calibration: dict[str, float], limit: int = 0
                               ) -> tuple[float, float, list[Record]]:
    """The fuller-form share and threshold with the best natural dev F1, and the dev records at that share.

    ``raw`` are the uncalibrated dev records; the reading-mode ones only need their scores calibrated
    (the best span stays the best), the end-to-end documents questions are asked again through the
    pipeline with the calibrated ``reader`` for each share."""
    reading = calibrated([r for r in raw if r.set != "documents"], calibration)
    best: tuple[float, float, float, list[Record]] | None = None
    for share in FULLER_FORM_SHARES:
        reader.fuller_form_share = share
        dev = collect(reader, ("documents",), "dev", limit) + reading
        threshold = choose_threshold(dev)
        f1 = f1_at(dev, threshold)
        print(f"fuller-form share {share}: natural dev F1 {f1:.3f} at threshold {threshold}")
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, share, threshold, dev)
    _, share, threshold, dev = best
    reader.fuller_form_share = share
    return share, threshold, dev


def reliability(records: Sequence[Record]) -> tuple[float, list[tuple[float, float, int]]]:
    """Expected calibration error and (mean score, share right, count) per bin, over answers given."""
    rows = [r for r in records if r.text is not None and r.score > 0]
    bins: list[list[Record]] = [[] for _ in range(BINS)]
    for r in rows:
        bins[min(BINS - 1, int(r.score * BINS))].append(r)
    table = [(sum(r.score for r in b) / len(b), sum(is_right(r) for r in b) / len(b), len(b)) for b in bins if b]
    ece = sum(n * abs(conf - acc) for conf, acc, n in table) / max(1, len(rows))
    return ece, table


def draw(path: Path, curves: dict[str, list[tuple[float, float, int]]], eces: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=110)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfectly calibrated")
    for (name, table), marker in zip(curves.items(), "osd^"):
        xs, ys, ns = zip(*table)
        ax.plot(xs, ys, marker=marker, label=f"{name} (ECE {eces[name]:.3f}, {sum(ns)} answers)")
    ax.set_xlabel("score of the answer (calibrated)")
    ax.set_ylabel("share of answers that are right (F1 ≥ 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Span model reliability, test questions")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"reliability diagram written to {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "qa" / "reading" / "span_model")
    ap.add_argument("--backend", default="onnx-int8", choices=["onnx-int8", "onnx", "torch"])
    ap.add_argument("--diagram", type=Path, default=ROOT / "docs" / "reliability.png")
    ap.add_argument("--limit", type=int, default=0, help="at most N questions per set (a quick check)")
    ap.add_argument("--null-margin", type=float, default=None,
                    help="propose spans up to this much below the null answer and let the threshold decide "
                         "(written to reader.json; default: the value already there, else 0)")
    ap.add_argument("--dev-only", action="store_true",
                    help="report the dev halves, films.jsonl and SQuADShifts dev at the fit and threshold chosen, "
                         "and write nothing (for choosing between models)")
    args = ap.parse_args()

    reader = load_reader(args.model, args.backend, calibrated=False, null_margin=args.null_margin)
    raw = collect(reader, CALIBRATION_SETS, "dev", args.limit)
    calibration = fit_calibration(raw)
    # from here on the reader answers as it will ship
    reader.calibration = (calibration["a"], calibration["b"], calibration["c"])
    share, threshold, dev = choose_share_and_threshold(reader, raw, calibration, args.limit)
    print(f"calibration a={calibration['a']} b={calibration['b']} c={calibration['c']}; fuller-form share {share}; "
          f"no-answer threshold {threshold}")
    natural = list(dev)
    if args.dev_only:
        dev += collect(reader, ("films", "squadshifts"), "dev", args.limit)
    print(report(dev, threshold))
    if args.dev_only:
        print(f"natural dev F1 {f1_at(natural, threshold):.3f}; "
              f"expected calibration error {reliability(natural)[0]:.3f}")
        return

    config_path = args.model / "reader.json"
    config = reader_config(args.model)
    config.update({"null_margin": reader.null_margin, "calibration": calibration, "no_answer_threshold": threshold,
                   "fuller_form_share": share, "calibrated_by": "training/calibrate_reader.py"})
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {config_path}")

    test = collect(reader, REPORT_SETS, "test", args.limit)
    print(report(test, threshold))
    natural = [r for r in test if r.set in CALIBRATION_SETS]
    curves, eces = {}, {}
    for name, rows in (("natural questions", natural),
                       ("more film questions (not fitted on)", [r for r in test if r.set == "films"]),
                       ("SQuADShifts (not fitted on)", [r for r in test if r.set == "squadshifts"])):
        eces[name], curves[name] = reliability(rows)
        print(f"{name}: expected calibration error {eces[name]:.3f}")
    draw(args.diagram, curves, eces)


if __name__ == "__main__":
    main()
