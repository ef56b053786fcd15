"""Shared helpers: machine description, and writing one section of BENCHMARKS.md in place."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Iterator

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
DATA = Path(os.environ.get("QA_BENCH_DATA", ROOT.parent / "shared" / "data"))
IMDB_REVIEWS = DATA / "imdb-reviews" / "reviews.jsonl.gz"
IMDB_QUESTIONS = DATA / "imdb-reviews" / "factual-qa-dev.jsonl"
SUBJQA_QUESTIONS = DATA / "subjqa-movies" / "dev.jsonl"
SUBJQA_CORPUS = DATA / "subjqa-movies" / "dev-corpus.jsonl"
BENCH_INDEX = Path(os.environ.get("QA_BENCH_INDEX", "/work/bench-index"))

def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON Lines file (blank lines skipped)."""
    import json

    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Write ``rows`` as a JSON Lines file (UTF-8, not ASCII-escaped)."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def imdb_reviews() -> Iterator[dict]:
    """Every record of the shared IMDB reviews file, streamed in file order."""
    import gzip
    import json

    with gzip.open(IMDB_REVIEWS, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def imdb_texts(ids: set[str]) -> dict[str, str]:
    """The text of each IMDB review in ``ids``, read from the shared reviews file."""
    return {d["id"]: d["text"] for d in imdb_reviews() if d["id"] in ids}


HEADER = """# Benchmarks

Written by the scripts in `benchmarks/` (each section says which command produced it and
when; rerun the command to refresh that section). Figures are from a shared 2-core machine:
the load average at the start of each run is recorded, because other jobs running at the same
time slow everything down.
"""


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{mem_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, AttributeError):
        mem = "? RAM"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = []
    for name in ("torch", "onnxruntime", "faiss", "sentence_transformers"):
        try:
            module = __import__(name)
            versions.append(f"{name} {getattr(module, '__version__', '?')}")
        except ImportError:
            pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {mem}; Linux {platform.release()}; "
            f"Python {platform.python_version()}; {', '.join(versions)}; load average at start {load}")


def command_line() -> str:
    module = Path(sys.argv[0]).resolve()
    try:
        shown = str(module.relative_to(ROOT))
    except ValueError:
        shown = str(module)
    niceness = os.nice(0)  # the command is shown with the priority it really ran at
    prefix = f"nice -n {niceness} " if niceness else ""
    return prefix + ".venv/bin/python " + " ".join([shown] + [shlex.quote(a) for a in sys.argv[1:]])


def stamp() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return out.stdout.strip() + ("+changes" if dirty.strip() else "")
    except OSError:
        return "?"


def write_section(key: str, title: str, body: str, started_machine: str | None = None) -> None:
    """Replace (or append) the section ``key`` of BENCHMARKS.md."""
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else HEADER
    block = (f"<!-- bench:{key} -->\n## {title}\n\n"
             f"- Date: {stamp()} (code {git_commit()})\n"
             f"- Command: `{command_line()}`\n"
             f"- Machine: {started_machine or machine()}\n\n"
             f"{body.strip()}\n<!-- /bench:{key} -->\n")
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->\n?", re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    BENCHMARKS_MD.write_text(text, encoding="utf-8")
    print(f"wrote section {key!r} of {BENCHMARKS_MD}")


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
