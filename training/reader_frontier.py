"""How much can the no-answer threshold trade? The answerable-F1 / no-answer frontier on SubjQA.

    .venv/bin/python training/reader_frontier.py [--reader-model DIR [DIR ...]] [--levels 0.5 0.6]

Reads every question of the SubjQA movies dev file and of the five other domains' dev
splits with the product's reader (``combined``), with the span model proposing its best
spans even where its null answer wins (``null_margin=inf``), so every question gets a top
answer and a score. Then, for each file, it tries every threshold and prints:

* at the product's threshold: answerable F1 and no-answer accuracy (as ``qa eval``);
* "forced": answerable F1 when every question is answered (what span choice alone gives);
* for each ``--levels`` value L: the best answerable F1 of any threshold whose no-answer
  accuracy is at least L, and that threshold.

The best threshold is picked on the very file it is scored on, in hindsight: an upper bound
on what tuning the threshold (or any answer/no-answer rule that keeps the reader's ranking
of questions) can do for that reader. Several ``--reader-model`` folders are read as one
ensemble: their start and end logits are averaged (ONNX backends only).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from eval_reader import SHARED, SUBJQA_MOVIES_DEV, best_over_golds, load_subjqa, token_f1  # noqa: E402
from qa.combined_reader import SPAN_MODEL_PATH, CombinedReader  # noqa: E402
from qa.hf_reader import TransformerReader, onnx_logits  # noqa: E402

OTHER_DOMAINS = ["books", "electronics", "grocery", "restaurants", "tripadvisor"]


class AveragedReader(TransformerReader):
    """Several span models of one tokenizer read as one: their logits averaged per window."""

    def __init__(self, paths: list[str], **kwargs: Any) -> None:
        super().__init__(paths[0], **kwargs)
        self.paths = paths
        self.sessions: list[Any] = []

    def _load(self) -> None:
        if self._model is not None:
            return
        super()._load()
        from qa.onnx_models import ensure_onnx_model, onnx_session

        precision = "int8" if self.backend == "onnx-int8" else "fp32"
        self.sessions = [self._model] + [
            onnx_session(ensure_onnx_model(p, precision, self.onnx_cache_dir, task="question-answering"))
            for p in self.paths[1:]]

    def _run_onnx(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        starts, ends = zip(*(onnx_logits(session, batch) for session in self.sessions))
        return torch.stack(starts).mean(0), torch.stack(ends).mean(0)


def scored(reader: CombinedReader, path: Path) -> list[tuple[bool, float, float]]:
    """(answerable, F1 of the top answer, its score) for each question of the file."""
    rows = []
    for ex in load_subjqa(path):
        best = max(reader.read(ex.question, ex.passages), key=lambda a: a.score, default=None)
        f1 = best_over_golds(token_f1, best.text, ex.answers) if best is not None and ex.answers else 0.0
        rows.append((bool(ex.answers), f1, best.score if best is not None else 0.0))
    return rows


def at_threshold(rows: list[tuple[bool, float, float]], threshold: float) -> tuple[float, float]:
    """(answerable F1, no-answer accuracy) when answers scoring below ``threshold`` are withheld."""
    answerable = [f1 if score >= threshold else 0.0 for has, f1, score in rows if has]
    unanswerable = [score < threshold for has, _, score in rows if not has]
    return statistics.mean(answerable), statistics.mean(unanswerable)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reader-model", nargs="+", default=[str(SPAN_MODEL_PATH)],
                    help="span model folder(s); several are averaged (default: the shipped model)")
    ap.add_argument("--reader-backend", default="onnx-int8", choices=["onnx-int8", "onnx"])
    ap.add_argument("--levels", nargs="+", type=float, default=[0.5, 0.6],
                    help="no-answer accuracies to report the best answerable F1 at")
    args = ap.parse_args()

    model = AveragedReader(args.reader_model, backend=args.reader_backend, null_margin=math.inf)
    reader = CombinedReader(model=model)
    files = {"movies": SUBJQA_MOVIES_DEV} | {
        d: SHARED / "subjqa-other" / f"{d}-dev.jsonl" for d in OTHER_DOMAINS}
    print(f"reader: {' + '.join(args.reader_model)}; product threshold {reader.threshold:.3f}")
    for name, path in files.items():
        if not path.exists():
            print(f"{name}: {path} not found, skipped")
            continue
        rows = scored(reader, path)
        ans, noans = at_threshold(rows, reader.threshold)
        forced, _ = at_threshold(rows, 0.0)
        line = (f"{name:12s} n={len(rows)} answerable={sum(r[0] for r in rows)}  product threshold: answerable F1 "
                f"{ans:.3f}, no-answer {noans:.3f}  forced: answerable F1 {forced:.3f}")
        points = [(at_threshold(rows, t), t) for t in sorted({r[2] for r in rows} | {math.inf})]
        for level in args.levels:
            best = max(((a, t) for (a, n), t in points if n >= level), default=(float("nan"), math.nan))
            line += f"  |  no-answer >= {level}: best answerable F1 {best[0]:.3f} (threshold {best[1]:.3f})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
