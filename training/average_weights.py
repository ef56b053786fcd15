"""Average the weights of span models fine-tuned from one another (a uniform "model soup").

    .venv/bin/python training/average_weights.py MODEL_DIR MODEL_DIR [...] --out DIR

Every tensor of ``model.safetensors`` is averaged in fp32 and written back in the first model's
dtype (fp16 for this project's models). The tokenizer and ``config.json`` come from the first
model; ``reader.json`` is written as ``train_reader.py`` writes it for new weights (window sizes
and ``KEPT_SETTINGS``, no calibration), so the average is calibrated afresh by ``calibrate_reader.py``. The
models must share one architecture: a tensor missing or shaped differently in one of them is an
error that names it, and nothing is written.

Why: the shipped weights came from fine-tuning the round 5 model on round 6's film questions.
That model gained on ``films.jsonl`` and lost on the IMDB dev questions; the average of the two
kept most of both gains (``docs/reader.md``, 2026-12-06, round 6).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.reading.transformer import reader_config  # noqa: E402
from training.train_reader import write_uncalibrated_config  # noqa: E402

WEIGHTS = "model.safetensors"
COPIED = ("config.json", "tokenizer.json", "tokenizer_config.json")


def average(models: Sequence[Path], out: Path) -> None:
    """Write the average of ``models``' weights, with the first one's tokenizer and config, to ``out``."""
    import torch
    from safetensors.torch import load_file, save_file

    if len(models) < 2:
        raise ValueError("average_weights: give at least two model folders")
    states = []
    for m in models:
        if not (m / WEIGHTS).is_file():
            raise ValueError(f"average_weights: {m / WEIGHTS} does not exist")
        states.append(load_file(str(m / WEIGHTS)))
    before = reader_config(models[0])
    if not {"max_length", "stride"} <= before.keys():
        raise ValueError(f"average_weights: {models[0] / 'reader.json'} does not give max_length and stride")
    first = states[0]
    for m, state in zip(models[1:], states[1:]):
        if state.keys() != first.keys():
            odd = sorted(state.keys() ^ first.keys())
            raise ValueError(f"average_weights: {m} does not have the tensors of {models[0]} (differs in {odd[:3]})")
        for k, v in state.items():
            if v.shape != first[k].shape:
                raise ValueError(f"average_weights: {m}: tensor {k} is {tuple(v.shape)}, not {tuple(first[k].shape)}")
    mean = {k: (sum(s[k].to(torch.float32) for s in states) / len(states)).to(first[k].dtype).contiguous()
            for k in first}
    out.mkdir(parents=True, exist_ok=True)
    save_file(mean, str(out / WEIGHTS), metadata={"format": "pt"})
    for name in COPIED:
        if (models[0] / name).is_file() and (models[0] / name).resolve() != (out / name).resolve():
            shutil.copyfile(models[0] / name, out / name)
    write_uncalibrated_config(out, before, "training/average_weights.py", before["max_length"], before["stride"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help="span-model folders with the same architecture")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    try:
        average(args.models, args.out)
    except ValueError as e:
        sys.exit(str(e))
    print(f"average of {len(args.models)} models written to {args.out}")


if __name__ == "__main__":
    main()
