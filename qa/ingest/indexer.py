"""Building and updating the index from review files.

``index_paths`` loads every document under the given paths, embeds only the
documents that are new or whose content changed (by hash), removes documents
that disappeared from those paths, and publishes the result as a new index
generation in one atomic step. Documents indexed from other paths are left
alone, so ``qa index my-reviews.jsonl`` adds to the shipped collection.
"""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from qa.ingest.loaders import FieldMap, Problem, load_path
from qa.embedding.base import passage_text_for_embedding
from qa.embedding.loading import embedder_for
from qa.ingest.passages import split_document
from qa.schema import Document, Passage
from qa.settings import Settings
from qa.stores.factory import open_update

# Documents embedded per step: bounds memory and keeps the progress bar moving. Each step's
# passages are sorted by length before batching (less padding), so bigger steps pad less.
CHUNK_DOCUMENTS = 1024


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    passages_embedded: int = 0
    embed_seconds: float = 0.0
    vector_index_seconds: float = 0.0
    seconds: float = 0.0
    embedding_backend: str = ""
    generation: str | None = None
    upgraded_from: int | None = None  # schema version of the index before this update, if it was older
    problems: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def content_hash(document: Document, settings: Settings) -> str:
    """Changes when the text, the metadata or the way passages are cut changes."""
    payload = json.dumps([document.text, document.film, document.title, document.metadata,
                          settings.max_passage_words, settings.overlap_sentences],
                         sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class _Progress:
    """A tqdm bar over documents showing passages per second, or nothing when quiet."""

    def __init__(self, quiet: bool):
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(unit=" docs", desc="indexing", dynamic_ncols=True)
        self.start = time.perf_counter()
        self.passages = 0

    def update(self, documents: int, passages: int) -> None:
        self.passages += passages
        if self.bar is not None:
            rate = self.passages / max(time.perf_counter() - self.start, 1e-9)
            self.bar.set_postfix_str(f"{self.passages} passages, {rate:.0f} passages/s", refresh=False)
            self.bar.update(documents)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def index_paths(
    paths: Sequence[Path],
    settings: Settings,
    fields: FieldMap = FieldMap(),
    rebuild: bool = False,
    quiet: bool = True,
    on_problem: Callable[[Problem], None] | None = None,
) -> IndexReport:
    """Bring the index in ``settings.index_dir`` up to date with ``paths``."""
    started = time.perf_counter()
    report = IndexReport()

    unreadable: set[str] = set()  # files that failed as a whole: their documents are kept

    def problem(p: Problem) -> None:
        report.problems.append(p)
        if p.line is None:
            unreadable.add(p.source)
        if on_problem:
            on_problem(p)

    embedder = embedder_for(settings)
    report.embedding_backend = embedder.backend
    update = open_update(settings, embedder.dimension, embedder.backend, rebuild=rebuild)
    progress = _Progress(quiet)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")
    try:
        with update as store:
            existing = store.document_hashes()
            roots = [str(Path(p).resolve()) for p in paths]
            seen: set[str] = set()
            pending: list[tuple[Document, str, str]] = []

            # Two stages: a worker thread embeds one chunk (ONNX Runtime and PyTorch release the
            # GIL) while this thread cuts the next chunk into passages and stores the previous one.
            in_flight: list[tuple[list[tuple[Document, str, str]], list[list[Passage]], Future]] = []

            def embed(texts: list[str]):
                t0 = time.perf_counter()
                vectors = embedder.encode(texts)
                report.embed_seconds += time.perf_counter() - t0
                return vectors

            def store_oldest() -> None:
                chunk, passages_per_doc, future = in_flight.pop(0)
                vectors = future.result()
                offset = 0
                for (doc, root, digest), passages in zip(chunk, passages_per_doc):
                    if doc.id in existing:
                        store.remove_document(doc.id)
                        report.updated += 1
                    else:
                        report.added += 1
                    store.add_document(doc, root, digest, passages, vectors[offset:offset + len(passages)])
                    offset += len(passages)
                report.passages_embedded += offset
                progress.update(len(chunk), offset)

            def flush() -> None:
                chunk = list(pending)
                pending.clear()
                passages_per_doc = [split_document(d, settings.max_passage_words, settings.overlap_sentences)
                                    for d, _, _ in chunk]
                texts = [passage_text_for_embedding(p.text, p.title) for ps in passages_per_doc for p in ps]
                in_flight.append((chunk, passages_per_doc, worker.submit(embed, texts)))
                if len(in_flight) > 1:
                    store_oldest()

            for path, root in zip(paths, roots):
                for doc in load_path(Path(path), fields, problem, int(settings.max_file_mb * 1_000_000)):
                    if doc.id in seen:
                        problem(Problem(doc.source, f"duplicate document id {doc.id!r} (already loaded from "
                                                    "another path); skipped", doc.line or 0))
                        continue
                    seen.add(doc.id)
                    digest = content_hash(doc, settings)
                    old = existing.get(doc.id)
                    if old is not None and old[0] == digest and not rebuild:
                        report.unchanged += 1
                        progress.update(1, 0)
                        continue
                    pending.append((doc, root, digest))
                    if len(pending) >= CHUNK_DOCUMENTS:
                        flush()
            if pending:
                flush()
            while in_flight:
                store_oldest()
            present = [r for r, p in zip(roots, paths) if Path(p).exists()]
            for doc_id, (_, root, source) in existing.items():
                if root in present and doc_id not in seen and source not in unreadable:
                    store.remove_document(doc_id)
                    report.removed += 1
            if report.changed or update.previous is None or rebuild or update.upgraded_from is not None:
                report.generation = update.publish()
                report.upgraded_from = update.upgraded_from
                report.vector_index_seconds = update.publish_seconds.get("build_vector_index", 0.0)
    finally:
        worker.shutdown(wait=True, cancel_futures=True)
        progress.close()
    report.seconds = time.perf_counter() - started
    return report
