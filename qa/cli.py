"""The ``qa`` command: index reviews, search them, ask questions, evaluate, serve.

Commands are thin: they parse flags into ``Settings``, call the pipeline or
the indexer, and format the result. Errors a user can fix are printed as one
line and a non-zero exit code; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from qa.ingest.loaders import FieldMap, Problem
from qa.settings import Settings

app = typer.Typer(help="Question answering over film reviews.", no_args_is_help=True,
                  context_settings={"help_option_names": ["-h", "--help"]}, add_completion=False,
                  pretty_exceptions_enable=False)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
STATE = {"debug": False}

StoreOpt = Annotated[Optional[str], typer.Option(
    "--store", "--index-dir", help="Where the index is: a folder, milvus-lite:PATH.db or http(s)://HOST:PORT "
                                   "(Milvus) [env QA_STORE; default index/].")]
TopK = Annotated[Optional[int], typer.Option("--top-k", "-k", min=1, max=50, help="Passages to return/read [default 5].")]
Film = Annotated[Optional[str], typer.Option("--film", help="Only this film's reviews.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
IdField = Annotated[str, typer.Option("--id-field", help="JSON Lines/CSV field holding the review id.")]
TextField = Annotated[str, typer.Option("--text-field", help="JSON Lines/CSV field holding the review text.")]
FilmField = Annotated[str, typer.Option("--film-field", help="JSON Lines/CSV field holding the film title.")]


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def settings_from(**overrides) -> Settings:
    """Settings from the environment, with the CLI flags that were given on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    STATE["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def index(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Files or folders to index [default: documents/].")] = None,
    store: StoreOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start from an empty index (re-embed everything).")] = False,
    upgrade: Annotated[bool, typer.Option(
        "--upgrade", help="Only bring an index of an older schema up to date (seconds, no re-embedding); "
                          "indexing any paths also does it.")] = False,
    id_field: IdField = "id",
    text_field: TextField = "text",
    film_field: FilmField = "film",
    max_passage_words: Annotated[Optional[int], typer.Option(help="Split longer paragraphs [default 200].")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Build or update the index: embeds only new or changed reviews, drops removed ones."""
    from qa.ingest.indexer import index_paths

    settings = settings_from(store=store, max_passage_words=max_passage_words)
    if upgrade:
        if paths:
            raise UserError("`qa index --upgrade` takes no paths: it changes nothing but the index's schema")
        from qa.stores.factory import where

        place = where(settings)
        if place.folder is None:
            raise UserError(f"`qa index --upgrade` upgrades local index folders; {place} is a Milvus store")
        upgrade_index(place.folder)
        return
    paths = paths or [settings.documents_dir]

    def show(problem: Problem) -> None:
        err.print(f"[yellow]skipped[/] {escape(str(problem))}")

    report = index_paths(paths, settings, FieldMap(id=id_field, text=text_field, film=film_field),
                         rebuild=rebuild, quiet=quiet, on_problem=show)
    rate = report.passages_embedded / report.embed_seconds if report.embed_seconds else 0.0
    summary = (f"{report.added} added, {report.updated} updated, {report.removed} removed, "
               f"{report.unchanged} unchanged; {report.passages_embedded} passages embedded")
    if report.passages_embedded:
        summary += f" ({rate:.0f} passages/s)"
    summary += f" in {report.seconds:.1f}s"
    if report.upgraded_from is not None:
        summary += f"; index upgraded from schema version {report.upgraded_from}"
    if report.problems:
        summary += f"; {len(report.problems)} problem(s) reported above"
    err.print(summary)
    if report.added + report.updated + report.unchanged == 0 and report.problems:
        raise typer.Exit(1)


def upgrade_index(index_dir: Path) -> None:
    """``qa index --upgrade``: the index in ``index_dir`` brought to this program's schema."""
    import time

    from qa.stores.local import SCHEMA_VERSION, upgrade

    started = time.perf_counter()
    generation = upgrade(index_dir)
    if generation is None:
        err.print(f"the index in {index_dir} already has schema version {SCHEMA_VERSION}; nothing to do")
    else:
        err.print(f"upgraded {index_dir} to schema version {SCHEMA_VERSION} ({generation}) "
                  f"in {time.perf_counter() - started:.1f}s")


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The question or search words.")],
    top_k: TopK = None,
    film: Film = None,
    store: StoreOpt = None,
    as_json: Json = False,
) -> None:
    """The passages most relevant to a question."""
    from qa.answering.pipeline import Pipeline

    pipeline = Pipeline(settings_from(store=store))
    passages = pipeline.search(question, top_k, {"film": film} if film else None)
    if as_json:
        keys = ("id", "document_id", "film", "title", "text", "score", "document_start")
        print(json.dumps({"passages": [{k: getattr(p, k) for k in keys} for p in passages]},
                         ensure_ascii=False, indent=2))
        return
    if not passages:
        out.print("No passages found.")
    for rank, p in enumerate(passages, start=1):
        out.print(f"[bold]{rank}. {escape(p.film or p.document_id)}[/]  [dim]{escape(p.id)}  score {p.score:.3f}[/]")
        out.print(escape(p.text), "\n")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question, e.g. 'who plays Sera?'.")],
    top_k: TopK = None,
    film: Film = None,
    store: StoreOpt = None,
    as_json: Json = False,
) -> None:
    """Answer a question from the indexed reviews, the answer marked in its sentence."""
    from qa.serving.schemas import result_to_response
    from qa.ingest.passages import sentence_spans
    from qa.answering.pipeline import BadRequest, Pipeline

    pipeline = Pipeline(settings_from(store=store))
    try:
        result = pipeline.ask(question, top_k, {"film": film} if film else None)
    except BadRequest as error:
        raise UserError(str(error)) from error
    if as_json:
        print(result_to_response(result).model_dump_json(indent=2))
        return
    if result.resolved_question != result.question:
        out.print(f"[dim]Understood as: {escape(result.resolved_question)}[/]")
    if result.no_answer:
        out.print("The reviews don't say. Closest passages:")
        for p in result.passages[:3]:
            out.print(f"  [bold]{escape(p.film or p.document_id)}[/]: {escape(p.text[:200])}…")
        return
    passages = {p.id: p for p in result.passages}
    for rank, answer in enumerate(result.answers, start=1):
        passage = passages[answer.passage_id]
        start, end = next(((s, e) for s, e in sentence_spans(passage.text) if s <= answer.start < e),
                          (0, len(passage.text)))
        before, after = passage.text[start:answer.start], passage.text[answer.end:max(end, answer.end)]
        marked = (f"{escape(before)}[bold yellow]{escape(answer.text)}[/]{escape(after)}" if out.is_terminal
                  else escape(f"{before}**{answer.text}**{after}"))
        cited = f", {len(answer.sources)} passages" if len(answer.sources) > 1 else ""
        out.print(f"[bold]{rank}. {escape(answer.text)}[/]  [dim]({escape(answer.film or answer.document_id)}; "
                  f"score {answer.score:.2f}{cited})[/]")
        out.print(f"   {marked}")


@app.command()
def info(store: StoreOpt = None, as_json: Json = False) -> None:
    """What is indexed: documents, passages, films, model, where it is stored and how."""
    from qa.stores.factory import open_store

    settings = settings_from(store=store)
    opened = open_store(settings)
    films = opened.films()
    described = opened.describe()
    facts = {**{k: v for k, v in described.items() if k != "size_on_disk_bytes"},
             "documents": opened.manifest.documents, "passages": opened.manifest.passages,
             "films": len(films), "embedding_model": opened.manifest.embedding_model,
             "dimension": opened.manifest.dimension}
    if "size_on_disk_bytes" in described:
        facts["size_bytes"] = described["size_on_disk_bytes"]
    if as_json:
        print(json.dumps({**facts, "film_titles": [f for f, _ in films]}, indent=2))
        return
    for key, value in facts.items():
        out.print(f"{key:16} {value}")
    if films:
        shown = ", ".join(f for f, _ in films[:20]) + (f", … ({len(films) - 20} more)" if len(films) > 20 else "")
        out.print(f"{'film titles':16} {escape(shown)}")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Address to listen on [default 127.0.0.1; 0.0.0.0 exposes it].")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port [default 8000].")] = None,
    store: StoreOpt = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes [default 1]. With Milvus no index "
                                                           "state lives in them; with a local index each opens it "
                                                           "read-only.")] = 1,
) -> None:
    """Serve the web chat and the HTTP API."""
    import os

    import uvicorn

    from qa.serving.app import create_app
    from qa.stores.base import IndexUnavailable
    from qa.stores.factory import where

    settings = settings_from(host=host, port=port, store=store)
    place = where(settings)
    if workers > 1:
        if place.milvus is not None and not place.milvus.uri.startswith(("http://", "https://")):
            raise UserError("a Milvus Lite file can be opened by one process only: serve it with --workers 1, "
                            "or run `milvus-lite server` and use --store http://HOST:PORT")
        # Each worker process builds its own app from the environment, so the flags travel there.
        os.environ.update({"QA_STORE": str(place), "QA_HOST": settings.host, "QA_PORT": str(settings.port)})
        err.print(f"Serving on http://{settings.host}:{settings.port} with {workers} workers  (Ctrl-C stops)")
        uvicorn.run("qa.serving.app:app_from_environment", factory=True, host=settings.host, port=settings.port,
                    workers=workers, log_level="warning")
        return
    app_ = create_app(settings)
    try:
        app_.state.pipeline.warm_up()
    except IndexUnavailable as error:
        err.print(f"[yellow]warning[/] {escape(str(error))}; the API answers 503 until an index exists")
    err.print(f"Serving on http://{settings.host}:{settings.port}  (Ctrl-C stops)")
    uvicorn.run(app_, host=settings.host, port=settings.port, log_level="warning")


@app.command(name="eval")
def evaluate(
    questions: Annotated[Path, typer.Argument(help="Questions in JSON Lines (factual-qa-dev or SubjQA format).")],
    mode: Annotated[str, typer.Option(help="'reading': only the gold review is read; 'end-to-end': the whole index.")] = "reading",
    corpus: Annotated[Optional[Path], typer.Option(help="Index this corpus first (with the field options).")] = None,
    store: StoreOpt = None,
    top_k: TopK = None,
    id_field: IdField = "id",
    text_field: TextField = "text",
    film_field: FilmField = "film",
    filter_field: Annotated[Optional[str], typer.Option(help="End-to-end: restrict by this question field (e.g. item_id as film).")] = None,
    as_json: Json = False,
) -> None:
    """SQuAD-style exact match and F1 of the top answer, plus retrieval recall@k."""
    from qa.evaluation import evaluate as run_eval, load_questions
    from qa.ingest.indexer import index_paths
    from qa.answering.pipeline import Pipeline

    if mode not in ("reading", "end-to-end"):
        raise UserError(f"--mode must be 'reading' or 'end-to-end', not {mode!r}")
    settings = settings_from(store=store)
    items = load_questions(questions)
    if corpus is not None:
        index_paths([corpus], settings, FieldMap(id=id_field, text=text_field, film=film_field), quiet=True,
                    on_problem=lambda p: err.print(f"[yellow]skipped[/] {escape(str(p))}"))
    report = run_eval(Pipeline(settings), items, mode=mode, top_k=top_k or settings.top_k, filter_field=filter_field)
    if as_json:
        print(json.dumps(asdict(report), indent=2))
        return
    out.print(report.summary(questions.name))


def run() -> None:
    """Entry point: known errors become one line on stderr and exit code 2 (or 1)."""
    from qa.embedding.base import ModelNotFound
    from qa.answering.pipeline import BadRequest
    from qa.stores.base import IndexLocked, IndexUnavailable

    try:
        app()
    except (UserError, IndexUnavailable, IndexLocked, ModelNotFound, BadRequest, FileNotFoundError,
            IsADirectoryError, PermissionError, ValueError) as error:
        if STATE["debug"]:
            raise
        err.print(f"[red]error:[/] {escape(str(error))}")
        sys.exit(2 if isinstance(error, (UserError, BadRequest, ValueError)) else 1)
    except KeyboardInterrupt:
        err.print("interrupted; the index in use is unchanged")
        sys.exit(130)
