"""Loading reviews from disk into ``Document`` objects.

Formats:

* Markdown / plain text (``.md``, ``.markdown``, ``.txt``): one review per file,
  optional YAML front matter. The id is the path relative to the indexed
  folder, without extension; the title is front matter ``title``, else the
  first ``#`` heading, else the file name.
* JSON Lines (``.jsonl``, ``.jsonl.gz``): one review per line, ``text``
  required, ``id`` optional, every other key kept as metadata.
* CSV with a header row: same fields as JSON Lines.

Field names for JSON Lines and CSV can be mapped (``FieldMap``). Bad input never
stops a run: each problem is reported as a ``Problem`` naming the file and line,
and the rest is loaded.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from qa.schema import Document

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".csv")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + RECORD_SUFFIXES

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@dataclass(frozen=True)
class FieldMap:
    """Which record fields hold the id, the text and the film title."""

    id: str = "id"
    text: str = "text"
    film: str = "film"


@dataclass(frozen=True)
class Problem:
    """Something in the input that was skipped, with where it was."""

    source: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.message}"


Report = Callable[[Problem], None]


def suffix_of(path: Path) -> str:
    name = path.name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else path.suffix.lower()


def find_files(root: Path, report: Report) -> list[Path]:
    """The supported files under ``root`` (a file or a folder), sorted."""
    if root.is_file():
        if suffix_of(root) in SUPPORTED_SUFFIXES:
            return [root]
        report(Problem(str(root), f"unsupported file type; expected one of {', '.join(SUPPORTED_SUFFIXES)}"))
        return []
    if not root.is_dir():
        report(Problem(str(root), "no such file or folder"))
        return []
    files = []
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_file() and suffix_of(path) in SUPPORTED_SUFFIXES:
            files.append(path)
    return files


def load_path(
    root: Path,
    fields: FieldMap = FieldMap(),
    report: Report = lambda problem: None,
    max_bytes: int | None = None,
) -> Iterator[Document]:
    """Every document under ``root``; problems go to ``report``, the rest loads."""
    seen: dict[str, str] = {}
    base = root if root.is_dir() else root.parent
    for path in find_files(root, report):
        try:
            if max_bytes is not None and path.stat().st_size > max_bytes:
                report(Problem(str(path), f"file is larger than {max_bytes // 1_000_000} MB; skipped"))
                continue
            docs = _load_file(path, base, fields, report)
            for doc in docs:
                if doc.id in seen:
                    report(Problem(doc.source, f"duplicate document id {doc.id!r} (first in {seen[doc.id]}); skipped",
                                   doc.line))
                    continue
                seen[doc.id] = doc.source
                yield doc
        except FileNotFoundError:
            report(Problem(str(path), "file disappeared while indexing; skipped"))
        except OSError as err:
            report(Problem(str(path), f"cannot read file ({err.strerror or err}); skipped"))


def _load_file(path: Path, base: Path, fields: FieldMap, report: Report) -> Iterator[Document]:
    suffix = suffix_of(path)
    if suffix in TEXT_SUFFIXES:
        doc = load_text_file(path, base, report)
        return iter([doc] if doc else [])
    if suffix == ".csv":
        return load_csv(path, fields, report)
    return load_jsonl(path, fields, report)


def _decode(data: bytes, source: str, report: Report) -> str | None:
    if b"\x00" in data[:8192]:
        report(Problem(source, "looks like a binary file (contains NUL bytes); skipped"))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        report(Problem(source, f"not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start}); "
                               "convert it to UTF-8; skipped"))
        return None


def load_text_file(path: Path, base: Path, report: Report = lambda p: None) -> Document | None:
    """A Markdown or plain-text review."""
    text = _decode(path.read_bytes(), str(path), report)
    if text is None:
        return None
    text = text.replace("\r\n", "\n")
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = mark.line + 2 if mark else 1
            report(Problem(str(path), f"front matter is not valid YAML ({getattr(err, 'problem', err)}); "
                                      "indexed without it", line))
            loaded = {}
        if loaded is not None and not isinstance(loaded, dict):
            report(Problem(str(path), "front matter is not a mapping of keys to values; indexed without it", 2))
            loaded = {}
        meta = {str(k): _plain(v) for k, v in (loaded or {}).items()}
        text = text[match.end():]
    if not text.strip():
        report(Problem(str(path), "empty document (no text); skipped"))
        return None
    heading = _HEADING.search(text)
    title = str(meta.get("title") or (heading.group(1) if heading else "") or _title_from_name(path)).strip()
    doc_id = path.relative_to(base).with_suffix("").as_posix()
    meta.pop("title", None)
    film = str(meta.pop("film", title))
    return Document(id=doc_id, text=text, film=film, title=title, metadata=meta, source=str(path))


def _title_from_name(path: Path) -> str:
    return re.sub(r"[-_]+", " ", path.stem).strip().title()


def _plain(value: Any) -> Any:
    """YAML values made JSON-friendly (dates become ISO strings)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _record_to_document(record: dict[str, Any], fields: FieldMap, source: str, line: int,
                        report: Report) -> Document | None:
    text = record.get(fields.text)
    if not isinstance(text, str):
        what = "missing" if text is None else f"not a string ({type(text).__name__})"
        report(Problem(source, f"text field {fields.text!r} is {what}; record skipped", line))
        return None
    if not text.strip():
        report(Problem(source, f"text field {fields.text!r} is empty; record skipped", line))
        return None
    raw_id = record.get(fields.id)
    if raw_id is None or str(raw_id).strip() == "":
        doc_id = f"{Path(source).name.split('.')[0]}:{line}"
    else:
        doc_id = str(raw_id).strip()
    film = record.get(fields.film)
    if film is None and fields.film == "film":
        film = record.get("title")
    metadata = {k: _plain(v) for k, v in record.items() if k not in (fields.text, fields.id, fields.film)}
    title = record.get("title") if isinstance(record.get("title"), str) else None
    film_text = str(film).strip() if film not in (None, "") else None
    return Document(id=doc_id, text=text, film=film_text, title=title or film_text,
                    metadata=metadata, source=source, line=line)


def load_jsonl(path: Path, fields: FieldMap = FieldMap(), report: Report = lambda p: None) -> Iterator[Document]:
    """JSON Lines, optionally gzipped; one review per line."""
    source = str(path)
    opener = gzip.open if suffix_of(path) == ".jsonl.gz" else open
    try:
        with opener(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    report(Problem(source, "line is not valid UTF-8; skipped", line_no))
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    report(Problem(source, f"not valid JSON ({err.msg} at column {err.colno}); line skipped", line_no))
                    continue
                if not isinstance(record, dict):
                    report(Problem(source, "line is not a JSON object; skipped", line_no))
                    continue
                doc = _record_to_document(record, fields, source, line_no, report)
                if doc:
                    yield doc
    except (gzip.BadGzipFile, EOFError) as err:
        report(Problem(source, f"damaged gzip file ({err}); stopped reading it here"))


def load_csv(path: Path, fields: FieldMap = FieldMap(), report: Report = lambda p: None) -> Iterator[Document]:
    """CSV with a header row; one review per row."""
    source = str(path)
    text = _decode(path.read_bytes(), source, report)
    if text is None:
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        report(Problem(source, "empty CSV file (no header row); skipped"))
        return
    if fields.text not in reader.fieldnames:
        report(Problem(source, f"no {fields.text!r} column in the header ({', '.join(reader.fieldnames)}); "
                               "use --text-field to name the text column; skipped", 1))
        return
    try:
        for row in reader:
            line_no = reader.line_num
            if None in row:
                report(Problem(source, "row has more cells than the header; row skipped", line_no))
                continue
            record = {k: v for k, v in row.items() if v is not None}
            doc = _record_to_document(record, fields, source, line_no, report)
            if doc:
                yield doc
    except csv.Error as err:
        report(Problem(source, f"malformed CSV ({err}); stopped reading it here", reader.line_num))
