"""The HTTP API: ``POST /ask``, ``GET /films``, ``GET /healthz`` (OpenAPI at ``/docs``).

Routes are thin: they validate the request, call the pipeline and shape the
JSON. Everything a client can get wrong is a 4xx with a message a person can
act on; an index that is missing or damaged is a 503; nothing leaks a stack
trace or a file path (the server log has the details).
"""
from __future__ import annotations

import asyncio
import re
import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from qa.auth import COOKIE, authorized
from qa.pipeline import BadRequest, Pipeline, Result
from qa.settings import Settings
from qa.store import IndexUnavailable
from qa.web import install_security_headers, mount_web

log = logging.getLogger("qa.api")

MAX_QUESTION_CHARS = 1000
MAX_HISTORY_TURNS = 50
BUSY_WAIT_SECONDS = 2.0  # how long a request waits for a free reading slot before a 503
# A question needs one character that is neither white space nor a control character
# (control characters are turned into spaces).
VISIBLE_CHARACTER = r"[^\s\u0000-\u001f\u007f-\u009f]"
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f]")


# ----- request and response shapes -------------------------------------------------------------

class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(..., max_length=MAX_QUESTION_CHARS)
    answer: str | None = Field(None, max_length=MAX_QUESTION_CHARS)
    film: str | None = Field(None, max_length=500, description="The film this turn was about, if known.")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "question": "who plays Sera?", "top_k": 5, "filters": {"film": "Leaving Las Vegas"},
        "history": [{"question": "who directed Leaving Las Vegas?", "answer": "Mike Figgis"}]}]})

    question: str = Field(..., max_length=MAX_QUESTION_CHARS, description="The question, in plain words.",
                          json_schema_extra={"pattern": VISIBLE_CHARACTER})
    top_k: int = Field(5, ge=1, le=50, description="How many passages are read.")
    filters: dict[str, str | list[str]] | None = Field(
        None, description="Metadata to match: document_id, film, or any metadata field; a list means any of.")
    history: list[Turn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS,
                                description="Earlier turns of the conversation, oldest first.")

    @field_validator("question")
    @classmethod
    def not_blank(cls, value: str) -> str:
        value = _CONTROL.sub(" ", value)
        if not value.strip():
            raise ValueError("the question is empty; type a question such as 'who plays Sera?'")
        return value


class SourceOut(BaseModel):
    document_id: str
    passage_id: str
    document_start: int
    document_end: int
    score: float
    film: str | None = None


class AnswerOut(BaseModel):
    text: str
    score: float = Field(..., ge=0, le=1)
    document_id: str
    passage_id: str
    start: int
    end: int
    document_start: int
    document_end: int
    film: str | None = None
    sources: list[SourceOut]


class PassageOut(BaseModel):
    id: str
    document_id: str
    film: str | None = None
    title: str | None = None
    text: str
    score: float
    document_start: int


class AskResponse(BaseModel):
    question: str
    resolved_question: str = Field(..., description="The question as understood, follow-ups resolved.")
    film: str | None = Field(None, description="The film the question was taken to be about, if any.")
    answers: list[AnswerOut]
    passages: list[PassageOut]
    no_answer: bool
    took_ms: int


class Film(BaseModel):
    title: str
    reviews: int


class Health(BaseModel):
    status: str
    documents: int = 0
    passages: int = 0
    films: int = 0
    embedding_model: str | None = None
    detail: str | None = None


class DocumentOut(BaseModel):
    id: str
    film: str | None
    title: str | None
    text: str


class ErrorOut(BaseModel):
    detail: str = Field(..., description="What was wrong, in words a person can act on.")


ERRORS = {
    401: {"model": ErrorOut, "description": "An API token is configured and the request has no valid one."},
    503: {"model": ErrorOut, "description": "No usable index, or the server is busy; retry later."},
}


def result_to_response(result: Result) -> AskResponse:
    return AskResponse(
        question=result.question,
        resolved_question=result.resolved_question,
        film=result.film,
        answers=[AnswerOut(**{**asdict(a), "score": round(a.score, 4)}) for a in result.answers],
        passages=[PassageOut(id=p.id, document_id=p.document_id, film=p.film, title=p.title, text=p.text,
                             score=p.score, document_start=p.document_start) for p in result.passages],
        no_answer=result.no_answer,
        took_ms=result.took_ms,
    )


# ----- the app ---------------------------------------------------------------------------------

class Busy(Exception):
    pass


class BodyLimit:
    """ASGI middleware: refuses request bodies over ``max_bytes`` with 413, before anything parses them."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        response = JSONResponse(status_code=413, content={
            "detail": f"request body too large: at most {self.max_bytes} bytes are accepted"})
        await response({"type": "http"}, None, send)


class _TooLarge(Exception):
    pass


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> FastAPI:
    pipeline = pipeline or Pipeline(settings)
    slots = asyncio.Semaphore(settings.max_concurrent_requests)
    app = FastAPIOffline(title="Film review QA", version="0.1.0",
                         description="Ask questions about film reviews; answers are marked inside the reviews.")
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    def require_token(request: Request) -> None:
        if not authorized(api_token(settings), request.headers.get("authorization"), request.cookies.get(COOKIE)):
            raise PermissionError

    auth = [Depends(require_token)]

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": describe_errors(exc.errors())})

    @app.exception_handler(BadRequest)
    async def bad(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(IndexUnavailable)
    async def unavailable(request: Request, exc: IndexUnavailable) -> JSONResponse:
        log.error("index unavailable: %s", exc)
        return JSONResponse(status_code=503, headers={"Retry-After": "30"}, content={
            "detail": "The review index is not available (missing, being built, or damaged). "
                      "The operator can build it with `qa index`; try again shortly."})

    @app.exception_handler(PermissionError)
    async def forbidden(request: Request, exc: PermissionError) -> JSONResponse:
        return JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                            content={"detail": "missing or wrong API token: send 'Authorization: Bearer <token>'"})

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy) -> JSONResponse:
        return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                            content={"detail": "The server is busy answering other questions; retry in a second."})

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": "Something went wrong on the server; "
                                                                "the error has been logged."})

    async def answer(req: AskRequest) -> Result:
        """Run the pipeline in a worker thread, at most ``max_concurrent_requests`` at once."""
        try:
            await asyncio.wait_for(slots.acquire(), timeout=BUSY_WAIT_SECONDS)
        except asyncio.TimeoutError:
            raise Busy from None
        try:
            return await run_in_threadpool(ask_with_history, pipeline, req)
        finally:
            slots.release()

    app.state.answer = answer

    @app.post("/ask", response_model=AskResponse, dependencies=auth,
              responses={**ERRORS, 413: {"model": ErrorOut, "description": "The request body is too large."},
                         422: {"model": ErrorOut, "description": "The request cannot be used; `detail` says why."}})
    async def ask(req: AskRequest) -> AskResponse:
        """Answer a question from the indexed reviews."""
        return result_to_response(await answer(req))

    @app.get("/films", response_model=list[Film], dependencies=auth, responses=ERRORS)
    def films() -> list[Film]:
        """The films in the index, by title, with their number of reviews."""
        return [Film(title=t, reviews=n) for t, n in pipeline.store.films()]

    @app.get("/documents/{document_id:path}", response_model=DocumentOut, dependencies=auth,
             responses={**ERRORS, 404: {"model": ErrorOut, "description": "No document with that id."}})
    def document(document_id: str) -> DocumentOut | JSONResponse:
        """A whole review, by id (ids are looked up in the index, never used as paths)."""
        doc = pipeline.store.document(document_id)
        if doc is None:
            return JSONResponse(status_code=404, content={"detail": f"no document with id {document_id!r}"})
        return DocumentOut(id=doc.id, film=doc.film, title=doc.title, text=doc.text)

    @app.get("/healthz", response_model=Health,
             responses={503: {"model": Health, "description": "No usable index."}})
    def healthz() -> Health | JSONResponse:
        """Whether the index is loaded, and what it holds."""
        try:
            store = pipeline.store
        except IndexUnavailable as err:
            log.warning("health: %s", err)
            return JSONResponse(status_code=503, content=Health(
                status="unavailable", detail="no usable index; build it with `qa index`").model_dump())
        m = store.manifest
        return Health(status="ok", documents=m.documents, passages=m.passages, films=len(store.films()),
                      embedding_model=m.embedding_model)

    mount_web(app, settings)  # the chat page at / and web/static at /static
    install_security_headers(app)  # CSP, nosniff, no-referrer on every response
    return app


def api_token(settings: Settings) -> str | None:
    return settings.api_token.get_secret_value() if settings.api_token else None


def ask_with_history(pipeline: Pipeline, req: AskRequest) -> Result:
    return pipeline.ask(req.question, req.top_k, req.filters, [t.model_dump() for t in req.history])


def describe_errors(errors) -> str:
    """Pydantic's errors as one sentence naming each field."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request body"
        message = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        if err.get("type") == "json_invalid":
            message = "is not valid JSON"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
