"""The HTTP API: ``POST /ask``, ``GET /films``, ``GET /healthz`` (OpenAPI at ``/docs``).

Routes are thin: they validate the request, call the pipeline and shape the
JSON. Everything a client can get wrong is a 4xx with a message a person can
act on; an index that is missing or damaged is a 503; nothing leaks a stack
trace or a file path (the server log has the details).
"""
from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from qa.answering.pipeline import BadRequest, Pipeline
from qa.serving.chat import mount_web
from qa.serving.deps import Asker, Busy
from qa.serving.schemas import (ERRORS, AskRequest, AskResponse, DocumentOut, ErrorOut, Film, Health,
                                describe_errors, result_to_response)
from qa.serving.security import COOKIE, BodyLimit, api_token, authorized, install_security_headers
from qa.settings import Settings
from qa.stores.base import FILTER_FIELDS, IndexUnavailable, StoreUnreachable

log = logging.getLogger("qa.serving.app")

# FastAPI's 400 when a JSON body cannot be decoded at all (bytes that are not text); the API documents a
# 422 for it. Other 400s (a malformed form on the chat's routes) keep their status and Starlette's message.
FASTAPI_BODY_ERROR = "There was an error parsing the body"


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> FastAPI:
    pipeline = pipeline or Pipeline(settings)
    answer = Asker(pipeline, settings.max_concurrent_requests)
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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_ERROR:  # a JSON body FastAPI could not decode
            why = ("it could not be read as UTF-8 text" if isinstance(exc.__cause__, UnicodeError)
                   else "it could not be read")
            return JSONResponse(status_code=422, content={"detail": f"request body: is not valid JSON ({why})"})
        return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail},
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(BadRequest)
    async def bad(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(exc)})

    @app.exception_handler(IndexUnavailable)
    async def unavailable(request: Request, exc: IndexUnavailable) -> JSONResponse:
        log.error("index unavailable: %s", exc)
        return JSONResponse(status_code=503, headers={"Retry-After": "5" if isinstance(exc, StoreUnreachable) else "30"},
                            content={"detail": unavailable_detail(exc)})

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

    app.state.answer = answer  # the chat's no-JS form asks through the same slots

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
                status="unavailable", detail=unavailable_detail(err)).model_dump())
        m = store.manifest
        return Health(status="ok", documents=m.documents, passages=m.passages, films=len(store.films()),
                      embedding_model=m.embedding_model)

    document_filter_keys(app, pipeline)
    mount_web(app, settings)  # the chat page at / and web/static (in this package) at /static
    install_security_headers(app)  # CSP, nosniff, no-referrer on every response
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker of ``qa serve --workers N``: settings from the environment, models warmed up."""
    app = create_app(Settings())
    try:
        app.state.pipeline.warm_up()
    except IndexUnavailable as err:
        log.warning("no index yet (%s); the API answers 503 until there is one", err)
    return app


def unavailable_detail(exc: IndexUnavailable) -> str:
    """What a client is told when there is no index to answer from (no paths or internals)."""
    if isinstance(exc, StoreUnreachable):
        return ("The review index's database (Milvus) is unreachable or restarting; answers resume when it is "
                "back. Try again shortly.")
    return ("The review index is not available (missing, being built, or damaged). "
            "The operator can build it with `qa index`; try again shortly.")


def document_filter_keys(app: FastAPI, pipeline: Pipeline) -> None:
    """The OpenAPI schema names the filter keys this index accepts (they follow its metadata).

    The schema is rebuilt on each request for it, so a new index generation with new metadata keys
    shows at once; without an index only the fixed fields are listed.
    """
    build = app.openapi

    def openapi() -> dict:
        app.openapi_schema = None
        schema = build()
        try:
            keys = sorted(set(FILTER_FIELDS) | pipeline.store.metadata_keys())
        except IndexUnavailable:
            keys = sorted(FILTER_FIELDS)
        filters = schema["components"]["schemas"]["AskRequest"]["properties"]["filters"]
        for option in filters.get("anyOf", [filters]):
            if option.get("type") == "object":
                option["propertyNames"] = {"enum": keys}
        filters["description"] = (f"Metadata to match, by key: {', '.join(keys)}; a value is a string or a list "
                                  "(any of). Another key is a 422 naming the known ones.")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
