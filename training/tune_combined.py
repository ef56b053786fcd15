"""Choose ``MODEL_SURE`` and ``MODEL_RIVALS`` of ``qa.combined_reader`` on held-out questions (not the dev files).

    .venv/bin/python training/tune_combined.py [--questions N]

On typed questions the combined reader lets the span model read first and
runs the typed-span reader only when the span model is not sure (its best
score under ``MODEL_SURE``, or its answers elsewhere adding up to more than
``MODEL_RIVALS``). This script reads typed synthetic film questions of
held-out films (``train_span_model.held_out_examples``: films no reader was
trained on) both ways and prints, for each pair of values, how many
questions skip the typed reader and the F1 of the top answer. The pair kept
skips the most questions with an F1 no lower than always reading both.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

from eval_reader import best_over_golds, token_f1  # noqa: E402
from train_span_model import held_out_examples  # noqa: E402

from qa.answer_types import answer_type_of  # noqa: E402
from qa.combined_reader import CombinedReader, combine, sureness  # noqa: E402
from qa.schema import Answer  # noqa: E402

SURE = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5)
RIVALS = (9.0, 1.0, 0.8, 0.6, 0.4)


def top_text(answers: list[Answer], threshold: float) -> str:
    kept = [a for a in answers if a.score >= threshold]
    return max(kept, key=lambda a: a.score).text if kept else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=0, help="read only a random sample of N typed questions")
    args = ap.parse_args()
    from qa.reader import load_reader
    from qa.settings import Settings

    reader = load_reader(Settings().model_copy(update={"reader": "combined"}))
    assert isinstance(reader, CombinedReader)
    _, synthetic = held_out_examples()
    typed = [ex for ex in synthetic if answer_type_of(ex.question) not in reader.model_types]
    random.Random(0).shuffle(typed)
    typed = typed[: args.questions or None]
    rows = []  # (span model's best score, F1 of the span model alone, F1 of both readers)
    for ex in typed:
        info = reader.typed.analyse(ex.question)
        stretches = reader.typed.focus(info, ex.passages)
        model = reader._model_answers(ex.question, stretches)
        both = combine(reader.typed.read_stretches(info, stretches), model)
        rows.append((sureness(model),
                     best_over_golds(token_f1, top_text(model, reader.threshold), ex.answers),
                     best_over_golds(token_f1, top_text(both, reader.threshold), ex.answers)))
    always = sum(f for _, _, f in rows) / len(rows)
    print(f"{len(rows)} typed held-out questions; F1 reading both always: {always:.4f}")
    chosen, most = None, -1
    for sure in SURE:
        for rivals in RIVALS:
            skip = [best >= sure and rest <= rivals for (best, rest), _, _ in rows]
            f1 = sum(alone if k else both for k, (_, alone, both) in zip(skip, rows)) / len(rows)
            print(f"   MODEL_SURE {sure:.2f} MODEL_RIVALS {rivals:.1f}: typed reader skipped on {sum(skip)} "
                  f"({sum(skip) / len(rows):.0%}), F1 {f1:.4f} ({f1 - always:+.4f})")
            if f1 >= always and sum(skip) > most:
                chosen, most = (sure, rivals), sum(skip)
    print(f"most questions skipped with F1 no lower than reading both: MODEL_SURE, MODEL_RIVALS = {chosen}")


if __name__ == "__main__":
    main()
