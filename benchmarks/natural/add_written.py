"""Add questions that helper agents wrote to a natural question set, with offsets and a split.

    .venv/bin/python benchmarks/natural/add_written.py documents --prefix docs-c OUT.jsonl ...
    .venv/bin/python benchmarks/natural/add_written.py imdb --prefix imdbnat-c --reviews SET.jsonl ... OUT.jsonl ...

Each written row is ``{"review_id", "question", "answers": ["exact span", ...], "kind"}``. An answer's
offsets are its first occurrence in the review: for ``documents`` in the body of
``documents/<review_id>.md`` (after the front matter), counted from the start of the file; for
``imdb`` in the review's ``text`` (from the ``--reviews`` files the writers were given, which carry
``imdb_title``). A row is dropped, and counted, when an answer is not found there, when its kind is
not one of the set's kinds, or when its question (lower-cased, without the question mark) is
already in the set. The split is ``dev`` or ``test`` by the first byte of a SHA-1: of the question
id for ``documents``, of the film id for ``imdb`` (so no film is in both halves).
"""
from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks._common import read_jsonl, write_jsonl  # noqa: E402

NATURAL = ROOT / "benchmarks" / "natural"
KINDS = {
    "documents": {"cast", "crew", "source", "time", "place", "plot", "relation", "opinion", "awards", "music",
                  "other", "unanswerable"},
    "imdb": {"who-plays", "director", "based-on", "year", "setting", "plot", "opinion", "other", "unanswerable"},
}
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)


def split_of(key: str) -> str:
    return "dev" if hashlib.sha1(key.encode("utf-8")).digest()[0] % 2 == 0 else "test"


def _key(question: str) -> str:
    return question.lower().strip().rstrip("?").strip()


def review_texts(name: str, review_files: list[Path]) -> dict[str, tuple[str, int, str | None]]:
    """review id -> (text answers are looked up in, offset of that text in the file, film id)."""
    if name == "documents":
        out = {}
        for path in sorted((ROOT / "documents").glob("*.md")):
            text = path.read_text(encoding="utf-8")
            head = FRONT_MATTER.match(text)
            skip = head.end() if head else 0
            out[path.stem] = (text[skip:], skip, None)
        return out
    return {r["review_id"]: (r["text"], 0, r["imdb_title"]) for f in review_files for r in read_jsonl(f)}


def add(name: str, prefix: str, written: list[Path], review_files: list[Path]) -> None:
    target = NATURAL / f"{name}.jsonl"
    rows = read_jsonl(target)
    seen = {_key(r["question"]) for r in rows}
    if any(r["id"].startswith(prefix + "-") for r in rows):
        sys.exit(f"{target.name} already has questions {prefix}-*: choose another --prefix")
    texts = review_texts(name, review_files)
    dropped: dict[str, int] = {}
    n = 0
    for path in written:
        for row in read_jsonl(path):
            why = None
            if row["review_id"] not in texts:
                why = "unknown review"
            elif row["kind"] not in KINDS[name]:
                why = f"unknown kind {row['kind']!r}"
            elif _key(row["question"]) in seen:
                why = "question already in the set"
            elif bool(row["answers"]) == (row["kind"] == "unanswerable"):
                why = "answers do not match the kind"
            text, skip, film = texts.get(row["review_id"], ("", 0, None))
            answers = []
            for a in row["answers"] if why is None else []:
                at = text.find(a)
                if at < 0 or not a.strip():
                    why = "answer not in the review"
                    break
                answers.append({"text": a, "start": skip + at, "end": skip + at + len(a)})
            if why:
                dropped[why] = dropped.get(why, 0) + 1
                continue
            n += 1
            seen.add(_key(row["question"]))
            qid = f"{prefix}-{n:03d}"
            out = {"id": qid, "question": row["question"], "review_id": row["review_id"]}
            if film is not None:
                out["imdb_title"] = film
            out.update({"answers": answers, "kind": row["kind"], "split": split_of(film or qid)})
            rows.append(out)
    write_jsonl(target, rows)
    print(f"{target.name}: added {n} questions ({len(rows)} now); dropped {sum(dropped.values())}: {dropped}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set", choices=sorted(KINDS))
    ap.add_argument("written", nargs="+", type=Path, help="the writers' JSON Lines files")
    ap.add_argument("--prefix", required=True, help="id prefix of the new questions, e.g. docs-c")
    ap.add_argument("--reviews", nargs="*", type=Path, default=[],
                    help="imdb: the review files the writers were given")
    args = ap.parse_args()
    if args.set == "imdb" and not args.reviews:
        ap.error("imdb needs --reviews: the files the writers were given")
    add(args.set, args.prefix, args.written, args.reviews)


if __name__ == "__main__":
    main()
