"""Train the span model on human-written questions, SQuAD 2.0 style, on CPU (or a GPU where there is one).

    .venv/bin/python training/train_reader.py [--steps N] [--resume] [--out qa/reading/span_model]

Data (nothing that any benchmark reports on is trained on):
- SQuADShifts (``../shared/data/squadshifts``, CC BY 4.0): the ``train`` split of
  ``training/squadshifts.py`` (4 products, articles or posts in 5). SQuADShifts has no
  unanswerable questions, so some are made: with probability ``--negatives`` a question is also
  paired with another paragraph of the same product or article (a paragraph on the same topic that
  does not contain any of its answers), or, where its group has no other paragraph (Reddit), with a
  random paragraph of the same source. Such pairs are trained to point at [CLS], "no answer".
- SubjQA's five other domains (``../shared/data/subjqa-other``): the train and test splits, with
  their own unanswerable questions; the dev splits are left out.
- Film questions (``training/data/film-questions.jsonl``, ``--film-repeat`` times, each time with or
  without the question mark by a coin toss): questions typed the
  way people type them into the chat, over IMDB reviews of films that no benchmark asks about, read in
  the passages the product cuts from each review; the review's other passages (and every passage, for
  the questions it does not answer) are "no answer" windows. ``--replay`` keeps only that share of the
  other windows, for a short fine-tune of the shipped model that does not forget them.

Each (question, passage) pair becomes token windows of ``--max-length`` tokens (``--stride`` overlap):
the gold span's first and last tokens as targets, or [CLS] when the window lacks the answer.
The model starts from ``--init`` (the shipped span model by default, a MiniLM-L6 encoder already
fine-tuned for span extraction).

A run is resumable: every ``--save-every`` steps the model, optimiser, schedule and step go to
``--checkpoints`` (outside the repository); ``--resume`` continues from the newest one, with the
same batch order; ``--export`` writes the newest checkpoint's weights out while a run goes on.
At the end the weights are written in fp16 to ``--out``; calibration and the no-answer threshold
are chosen afterwards on the natural dev sets by ``training/calibrate_reader.py``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from benchmarks._common import imdb_texts, read_jsonl  # noqa: E402
from training import squadshifts  # noqa: E402
from qa.ingest.passages import split_document  # noqa: E402
from qa.reading.transformer import reader_config  # noqa: E402
from qa.schema import Document  # noqa: E402

SEED = 14
SUBJQA_OTHER = squadshifts.DATA / "subjqa-other"
DEFAULT_CHECKPOINTS = Path.home() / ".cache" / "qa-training" / "span-model"
NEGATIVE_PASSAGE_SHARE = 0.3  # SubjQA passages of answerable questions that lack the answer, kept as negatives
FILM_QUESTIONS = ROOT / "training" / "data" / "film-questions.jsonl"


@dataclass
class Pair:
    question: str
    context: str
    start: int | None  # character offsets of the answer in context; None: no answer here
    end: int | None


def squadshifts_pairs(rng: random.Random, negatives: float) -> list[Pair]:
    """Every train question with its first annotator span, plus made-up "no answer" pairs."""
    questions = squadshifts.load("train")
    by_group: dict[str, dict[str, str]] = {}  # group -> {context id: paragraph}
    for q in questions:
        by_group.setdefault(q.group, {})[q.context_id] = q.context
    by_source: dict[str, list[str]] = {}  # source -> its paragraphs, in the order of their groups
    for group, ctxs in by_group.items():
        by_source.setdefault(group.split("/")[0], []).extend(ctxs.values())
    out = []
    for q in questions:
        a = q.answers[0]
        out.append(Pair(q.question, q.context, a["start"], a["end"]))
        if rng.random() >= negatives:
            continue
        golds = [x["text"].lower() for x in q.answers]
        others = [c for cid, c in by_group[q.group].items() if cid != q.context_id]
        pool = others or by_source[q.source]
        for _ in range(5):
            other = rng.choice(pool)
            if other != q.context and not any(g in other.lower() for g in golds):
                out.append(Pair(q.question, other, None, None))
                break
    return out


def subjqa_pairs(rng: random.Random) -> list[Pair]:
    """SubjQA-other train and test questions over the passages the product would cut (200 words)."""
    out = []
    for split in ("train", "test"):
        for path in sorted(SUBJQA_OTHER.glob(f"*-{split}.jsonl")):
            for line in path.open(encoding="utf-8"):
                r = json.loads(line)
                out.extend(review_pairs(rng, r["question"], r["review_id"], r["review"],
                                        [a["text"] for a in r["answers"]]))
    return out


def review_pairs(rng: random.Random, question: str, review_id: str, text: str, answers: list[str]) -> list[Pair]:
    """One question over the passages the product cuts from its review (200 words): the passages
    holding an answer, and a share of the others as "no answer" (all of them when it has none)."""
    out = []
    for p in split_document(Document(id=review_id, text=text), 200):
        hit = next(((i, i + len(a)) for a in answers if (i := p.text.find(a)) >= 0), None)
        if hit:
            out.append(Pair(question, p.text, *hit))
        elif not answers or rng.random() < NEGATIVE_PASSAGE_SHARE:
            out.append(Pair(question, p.text, None, None))
    return out


def question_form(question: str, rng: random.Random) -> str:
    """The question with or without its closing question mark, by a coin toss: people type both, and a
    model that saw one form of a question only answers that form (the tokenizer is uncased, so letter
    case needs no such care)."""
    bare = question.rstrip().rstrip("?").rstrip()
    return bare + "?" if rng.random() < 0.5 else bare


def film_pairs(rng: random.Random, repeat: int = 1, path: Path = FILM_QUESTIONS) -> list[Pair]:
    """The film questions of ``path`` over their IMDB reviews (read from ``../shared``), ``repeat``
    times, each time in a fresh ``question_form`` and with a fresh draw of "no answer" passages."""
    rows = read_jsonl(path)
    texts = imdb_texts({r["review_id"] for r in rows})
    out = []
    for _ in range(repeat):
        for r in rows:
            out.extend(review_pairs(rng, question_form(r["question"], rng), r["review_id"],
                                    texts[r["review_id"]], [a["text"] for a in r["answers"]]))
    return out


def features_of(tokenizer: Any, pairs: list[Pair], max_length: int, stride: int) -> list[dict[str, Any]]:
    """Token windows with start/end targets (0 = [CLS] when the answer is not inside the window)."""
    feats = []
    for lo in range(0, len(pairs), 2000):
        chunk = pairs[lo : lo + 2000]
        enc = tokenizer([p.question for p in chunk], [p.context for p in chunk], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
        for w, pi in enumerate(enc["overflow_to_sample_mapping"]):
            pair, offsets, seq = chunk[pi], enc["offset_mapping"][w], enc.sequence_ids(w)
            s_tok = e_tok = 0
            if pair.start is not None:
                ctx = [i for i, s in enumerate(seq) if s == 1]
                if offsets[ctx[0]][0] <= pair.start and offsets[ctx[-1]][1] >= pair.end:
                    s_tok = next(i for i in ctx if offsets[i][1] > pair.start)
                    e_tok = next(i for i in reversed(ctx) if offsets[i][0] < pair.end)
            feats.append({"input_ids": enc["input_ids"][w], "token_type_ids": enc["token_type_ids"][w],
                          "start": s_tok, "end": e_tok})
    return feats


def batch_order(feats: list[dict[str, Any]], size: int, epoch: int) -> list[list[int]]:
    """Length-bucketed batches (little padding) in a random order fixed by the epoch, so a resumed
    run sees the same batches."""
    rng = random.Random(SEED * 1000 + epoch)
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]) + rng.random() * 8)
    groups = [order[i : i + size] for i in range(0, len(order), size)]
    rng.shuffle(groups)
    return groups


def collate(group: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    n = max(len(f["input_ids"]) for f in group)
    ids = torch.zeros(len(group), n, dtype=torch.long)
    types = torch.zeros(len(group), n, dtype=torch.long)
    mask = torch.zeros(len(group), n, dtype=torch.long)
    for i, f in enumerate(group):
        k = len(f["input_ids"])
        ids[i, :k] = torch.tensor(f["input_ids"])
        types[i, :k] = torch.tensor(f["token_type_ids"])
        mask[i, :k] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": torch.tensor([f["start"] for f in group]),
            "end_positions": torch.tensor([f["end"] for f in group])}


KEPT_SETTINGS = ("passage_prior",)  # reader settings chosen on dev, not learned: carried over from --init


def save_weights(model: Any, tokenizer: Any, out: Path, max_length: int, stride: int, init: Path) -> None:
    """fp16 weights, the tokenizer, the window sizes and ``KEPT_SETTINGS`` of the ``init`` model; the
    calibration and threshold of whatever was in ``out`` are dropped (they belong to other weights) and
    left to calibrate_reader.py."""
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out, safe_serialization=True)
    model.float()
    tokenizer.save_pretrained(out)
    write_uncalibrated_config(out, reader_config(init), "training/train_reader.py", max_length, stride)


def write_uncalibrated_config(out: Path, before: dict[str, Any], trained_by: str, max_length: int, stride: int) -> None:
    """``reader.json`` for new weights: their window sizes and ``KEPT_SETTINGS`` of ``before`` (the
    reader.json they came from), without calibration or threshold, which calibrate_reader.py adds."""
    config = {"max_length": max_length, "stride": stride, "normalize": "question", "trained_by": trained_by}
    config.update({k: before[k] for k in KEPT_SETTINGS if k in before})
    (out / "reader.json").write_text(json.dumps(config, indent=2) + "\n")


def newest_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    return found[-1] if found else None


def main() -> None:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", type=Path, default=ROOT / "qa" / "reading" / "span_model",
                    help="the model to start from (default: the shipped span model)")
    ap.add_argument("--out", type=Path, default=ROOT / "qa" / "reading" / "span_model")
    ap.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINTS)
    ap.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --checkpoints")
    ap.add_argument("--epochs", type=float, default=1.0, help="passes over the training windows")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (overrides --epochs)")
    ap.add_argument("--lr", type=float, default=6e-5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--negatives", type=float, default=0.33,
                    help="share of SQuADShifts questions also paired with a paragraph lacking the answer")
    ap.add_argument("--no-subjqa", action="store_true", help="train on SQuADShifts only")
    ap.add_argument("--film-repeat", type=int, default=0,
                    help=f"add the film questions ({FILM_QUESTIONS.relative_to(ROOT)}) this many times")
    ap.add_argument("--replay", type=float, default=1.0,
                    help="keep this share of the SQuADShifts and SubjQA windows (a seeded sample)")
    ap.add_argument("--skip", type=int, default=0,
                    help="start at this batch of the first pass: finish a pass whose checkpoints are gone, "
                         "on the windows it had not reached (the batch order is fixed by the seed)")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPUs with AVX-512 BF16, GPUs)")
    ap.add_argument("--limit", type=int, default=0, help="use only N training windows (a quick check)")
    ap.add_argument("--export", action="store_true",
                    help="only write the newest checkpoint's weights to --out (to try a run that is still going)")
    args = ap.parse_args()
    if args.export:
        found = newest_checkpoint(args.checkpoints)
        if found is None:
            sys.exit(f"--export: no checkpoint in {args.checkpoints}")
        model = AutoModelForQuestionAnswering.from_pretrained(str(args.init), dtype=torch.float32)
        model.load_state_dict(torch.load(found, map_location="cpu")["model"])
        save_weights(model.eval(), AutoTokenizer.from_pretrained(str(args.init)), args.out, args.max_length,
                     args.stride, args.init)
        print(f"{found} written to {args.out}")
        return

    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.checkpoints.mkdir(parents=True, exist_ok=True)
    resume_from = newest_checkpoint(args.checkpoints) if args.resume else None
    if args.resume and resume_from is None:
        sys.exit(f"--resume: no checkpoint in {args.checkpoints}")

    tokenizer = AutoTokenizer.from_pretrained(str(args.init))
    cache = args.checkpoints / f"features-{args.max_length}-{args.stride}-{args.negatives}-{int(args.no_subjqa)}.pt"
    if cache.exists():
        feats = torch.load(cache)
    else:
        rng = random.Random(SEED)
        pairs = squadshifts_pairs(rng, args.negatives) + ([] if args.no_subjqa else subjqa_pairs(rng))
        print(f"{len(pairs)} (question, passage) pairs, {sum(p.start is None for p in pairs)} without the answer",
              flush=True)
        feats = features_of(tokenizer, pairs, args.max_length, args.stride)
        torch.save(feats, cache)
    if args.replay < 1.0:
        feats = random.Random(SEED + 1).sample(feats, int(len(feats) * args.replay))
    if args.film_repeat:
        film = features_of(tokenizer, film_pairs(random.Random(SEED + 2), args.film_repeat), args.max_length,
                           args.stride)
        print(f"film questions, {args.film_repeat} times: {len(film)} windows "
              f"({sum(f['start'] > 0 for f in film)} with the answer)", flush=True)
        feats = feats + film
    if args.limit:
        feats = feats[: args.limit]
    print(f"training windows: {len(feats)} ({sum(f['start'] > 0 for f in feats)} with the answer inside)", flush=True)

    steps_per_epoch = math.ceil(len(feats) / args.batch)
    total = args.steps or int(steps_per_epoch * args.epochs) - args.skip
    model = AutoModelForQuestionAnswering.from_pretrained(str(args.init), dtype=torch.float32).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(0.06 * total), total)
    step, running = 0, None
    if resume_from is not None:
        state = torch.load(resume_from, map_location=device)
        if state["total"] != total:
            sys.exit(f"--resume: {resume_from} belongs to a run of {state['total']} steps, not {total}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, running = state["step"], state["loss"]
        print(f"resumed from {resume_from} at step {step}", flush=True)

    model.train()
    bar = tqdm(total=total, initial=step, desc="training", unit="step", dynamic_ncols=True, mininterval=10)
    while step < total:
        epoch, within = divmod(step + args.skip, steps_per_epoch)
        for group in batch_order(feats, args.batch, epoch)[within:]:
            batch = {k: v.to(device) for k, v in collate([feats[i] for i in group]).items()}
            with torch.autocast(device, dtype=torch.bfloat16, enabled=args.bf16):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", refresh=False)
            if step % args.save_every == 0 or step == total:
                path = args.checkpoints / f"step-{step}.pt"
                torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(), "step": step, "total": total, "loss": running,
                            "args": {k: str(v) for k, v in vars(args).items()}}, path.with_suffix(".tmp"))
                path.with_suffix(".tmp").replace(path)
                for old in args.checkpoints.glob("step-*.pt"):
                    if old != path:
                        old.unlink()
            if step >= total:
                break
    bar.close()
    model.eval()
    save_weights(model.cpu(), tokenizer, args.out, args.max_length, args.stride, args.init)
    print(f"weights written to {args.out}; next: training/calibrate_reader.py", flush=True)


if __name__ == "__main__":
    main()
