"""Draw the IMDB reviews that helper agents write film training questions over, and merge what they wrote.

    .venv/bin/python training/data/film_pool.py --out /tmp/pool [--sets 14 --per-set 40]
        [--min-chars 900 --max-chars 3000 --min-names 6]
    .venv/bin/python training/data/film_pool.py --merge /tmp/pool   # out-N.jsonl -> film-questions.jsonl

A review qualifies when it is 900-3,000 characters long and names at least six capitalised
two-word names (a crude sign of a review rich in cast and crew); rounds 1-5 drew with these
defaults, and round 6, when too few films were left, with 700-4,000 characters and four names. Reviews are shuffled with
seed 20261204 and taken one per film, in that order. Left out: every film a benchmark asks
about (`benchmarks/natural/*.jsonl`, `factual-qa-dev.jsonl`), every film already in
`film-questions.jsonl`, and every review that names a film of the shipped `documents/` or a
two-word name of one of those reviews (their characters and cast; matched as lower-case
substrings, so "Alien" also leaves out "alienated": the filter errs on leaving reviews out).
Writes `set-N.jsonl` files of `--per-set` reviews (`review_id`, `imdb_title`, `text`), numbered on from the last set in
`film-questions.jsonl`; when fewer reviews qualify than asked for, it says so and writes only
the sets it can fill (the last one may be short).

``--merge`` appends each helper's ``out-N.jsonl`` (``review_id``, ``question``, ``answers`` as
strings, ``kind``) to ``film-questions.jsonl`` as ``filmtrain-N-XXX``: each answer's offsets are
its first occurrence in the review, and a question with an answer not found there is dropped
(and counted).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks._common import IMDB_QUESTIONS, imdb_reviews, read_jsonl, write_jsonl  # noqa: E402
from training.train_reader import FILM_QUESTIONS  # noqa: E402

SEED = 20261204
NAME_PAIR = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")


def shipped_names() -> set[str]:
    """Titles and two-word names of the shipped reviews, lower-cased."""
    names: set[str] = set()
    for path in sorted((ROOT / "documents").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        title = re.search(r"^title:\s*\"?(.+?)\"?\s*$", text, re.M)
        if title:
            names.add(title.group(1).lower())
        names.update(m.lower() for m in NAME_PAIR.findall(text))
    return names


def merge(pool: Path, target: Path = FILM_QUESTIONS) -> None:
    """Append the helpers' out-N.jsonl files of ``pool`` to ``target``."""
    have = {q["id"].rsplit("-", 1)[0] for q in read_jsonl(target)}
    titles = {}
    for path in pool.glob("set-*.jsonl"):
        titles.update({r["review_id"]: (r["imdb_title"], r["text"]) for r in read_jsonl(path)})
    kept = dropped = 0
    with open(target, "a", encoding="utf-8") as out:
        for path in sorted(pool.glob("out-*.jsonl"), key=lambda p: int(p.stem.split("-")[1])):
            prefix = f"filmtrain-{path.stem.split('-')[1]}"
            if prefix in have:
                print(f"{path.name}: already merged as {prefix}, skipped")
                continue
            n = 0
            for row in read_jsonl(path):
                title, text = titles[row["review_id"]]
                answers = [{"text": a, "start": (at := text.find(a)), "end": at + len(a)} for a in row["answers"]]
                if any(a["start"] < 0 or not a["text"].strip() for a in answers):
                    dropped += 1
                    continue
                n += 1
                out.write(json.dumps({"id": f"{prefix}-{n:03d}", "question": row["question"],
                                      "review_id": row["review_id"], "imdb_title": title,
                                      "answers": answers, "kind": row["kind"]}, ensure_ascii=False) + "\n")
            kept += n
            print(f"{path.name}: {n} questions")
    print(f"merged {kept} questions, dropped {dropped} whose answer is not in the review")


def draw(out_dir: Path, sets: int, per_set: int, min_chars: int = 900, max_chars: int = 3000,
         min_names: int = 6) -> None:
    """Write ``sets`` files of ``per_set`` qualifying reviews, one per film, to ``out_dir``."""
    questions = read_jsonl(FILM_QUESTIONS)
    used = {q["imdb_title"] for q in questions}
    for path in [*(ROOT / "benchmarks" / "natural").glob("*.jsonl"), IMDB_QUESTIONS]:
        used |= {q["imdb_title"] for q in read_jsonl(path) if "imdb_title" in q}
    first_set = 1 + max(int(q["id"].split("-")[1]) for q in questions)
    shipped = shipped_names()

    reviews = list(imdb_reviews())
    random.Random(SEED).shuffle(reviews)
    picked: list[dict] = []
    for r in reviews:
        text = r["text"]
        if r["imdb_title"] in used or not min_chars <= len(text) <= max_chars:
            continue
        if len(set(NAME_PAIR.findall(text))) < min_names:
            continue
        low = text.lower()
        if any(name in low for name in shipped):
            continue
        used.add(r["imdb_title"])
        picked.append({"review_id": r["id"], "imdb_title": r["imdb_title"], "text": text})
        if len(picked) == sets * per_set:
            break
    if len(picked) < sets * per_set:
        print(f"only {len(picked)} reviews qualify, not {sets * per_set}: loosen --min-chars, "
              "--max-chars or --min-names for more", file=sys.stderr)
    filled = -(-len(picked) // per_set)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i in range(filled):
        write_jsonl(out_dir / f"set-{first_set + i}.jsonl", picked[i * per_set:(i + 1) * per_set])
    print(f"{len(picked)} reviews in sets {first_set}-{first_set + filled - 1} under {out_dir}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="where to write the set-N.jsonl review files")
    ap.add_argument("--merge", type=Path, help="a pool folder whose out-N.jsonl files to merge")
    ap.add_argument("--sets", type=int, default=14)
    ap.add_argument("--per-set", type=int, default=40)
    ap.add_argument("--min-chars", type=int, default=900, help="shortest review to draw")
    ap.add_argument("--max-chars", type=int, default=3000, help="longest review to draw")
    ap.add_argument("--min-names", type=int, default=6,
                    help="fewest distinct capitalised two-word names a review must have")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge)
    elif args.out:
        draw(args.out, args.sets, args.per_set, args.min_chars, args.max_chars, args.min_names)
    else:
        ap.error("give --out (draw reviews) or --merge (merge questions)")


if __name__ == "__main__":
    main()
