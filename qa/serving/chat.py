"""The browser chat at ``/`` and its static files.

The page works in two ways that render the same conversation:

* with JavaScript (``qa/serving/web/static/app.js``), the page calls ``POST /ask`` and
  builds each reply in the browser, keeping the turns in memory;
* without it, the form posts to ``POST /`` with the earlier turns in hidden
  fields, and the server renders the whole conversation here.

Templates are Jinja2 with autoescaping on: every string from a review or a user
is escaped. The Content-Security-Policy (``security.py``) forbids inline scripts and styles.
"""
from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qa.retrieval.titles import find_film
from qa.answering.pipeline import BadRequest
from qa.serving.deps import Busy
from qa.serving.schemas import MAX_HISTORY_TURNS, MAX_QUESTION_CHARS, AskRequest, Turn, result_to_response
from qa.serving.security import COOKIE, api_token, authorized, same, session_value
from qa.settings import Settings
from qa.stores.base import IndexUnavailable

log = logging.getLogger("qa.serving.chat")

WEB_DIR = Path(__file__).resolve().parent / "web"
SUGGESTIONS_FILE = WEB_DIR / "suggestions.json"
SUGGESTIONS_SHOWN = 4
MAX_CARRIED_TURNS = MAX_HISTORY_TURNS  # same bound as the API's history

# Confidence in words, from the answer's score in [0, 1], the chance that it is right: "unsure"
# where it is right less than 60% of the time (the span model's answers score 0.4 and up), "confident"
# from 80%. The one place the thresholds live (the page's JavaScript receives them from the template).
CONFIDENCE = ((0.8, "confident"), (0.6, "likely"), (0.0, "unsure"))

def confidence_word(score: float) -> str:
    return next(word for threshold, word in CONFIDENCE if score >= threshold)


# ----- what the page shows ---------------------------------------------------------------------

@dataclass
class Marked:
    """A passage with the answer span marked: ``before`` + ``mark`` + ``after``."""
    document_id: str
    film: str | None
    before: str
    mark: str
    after: str
    document_start: int  # of the passage; the mark's document offsets follow from it
    score: float | None = None

    @property
    def mark_start(self) -> int:
        return self.document_start + len(self.before)

    @property
    def mark_end(self) -> int:
        return self.mark_start + len(self.mark)


@dataclass
class AnswerView:
    text: str
    film: str | None
    score: float
    passage: Marked | None

    @property
    def confidence(self) -> str:
        return confidence_word(self.score)


@dataclass
class Reply:
    question: str
    understood: str | None = None  # the resolved question, when it differs from the typed one
    answers: list[AnswerView] = field(default_factory=list)
    passages: list[Marked] = field(default_factory=list)  # the passages read (nothing marked)
    no_answer: bool = False
    error: str | None = None
    carried: str | None = None  # the turn as JSON, for the no-JS form's hidden field

    @property
    def best(self) -> AnswerView | None:
        return self.answers[0] if self.answers else None


class CarriedTurn(BaseModel):
    """An earlier turn as the no-JS form carries it; offsets point into the review in the index."""
    model_config = ConfigDict(extra="ignore")
    question: str = Field(..., min_length=1, max_length=MAX_QUESTION_CHARS)
    understood: str | None = Field(None, max_length=2000)
    answer: str | None = Field(None, max_length=MAX_QUESTION_CHARS)
    film: str | None = Field(None, max_length=500)
    score: float | None = Field(None, ge=0, le=1)
    document_id: str | None = Field(None, max_length=500)
    passage_start: int | None = Field(None, ge=0)
    passage_end: int | None = Field(None, ge=0)
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)

    def history(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "film": self.film}


def marked(text: str, start: int, end: int, document_id: str, film: str | None, document_start: int,
           score: float | None = None) -> Marked:
    return Marked(document_id=document_id, film=film, before=text[:start], mark=text[start:end],
                  after=text[end:], document_start=document_start, score=score)


def reply_from_response(resp) -> Reply:
    """The view of an ``AskResponse``: answers with their passage, the span marked by its offsets."""
    passages = {p.id: p for p in resp.passages}
    answers = []
    for a in resp.answers:
        p = passages.get(a.passage_id)
        where = marked(p.text, a.start, a.end, p.document_id, p.film, p.document_start) if p else None
        answers.append(AnswerView(text=a.text, film=a.film, score=a.score, passage=where))
    read = [marked(p.text, 0, 0, p.document_id, p.film, p.document_start, p.score) for p in resp.passages]
    reply = Reply(question=resp.question,
                  understood=resp.resolved_question if resp.resolved_question != resp.question else None,
                  answers=answers, passages=read, no_answer=resp.no_answer)
    carried = CarriedTurn(question=resp.question, understood=reply.understood, film=resp.film)
    if answers:
        best, p = resp.answers[0], passages.get(resp.answers[0].passage_id)
        carried.answer, carried.score, carried.film = best.text, best.score, best.film or resp.film
        if p:
            carried.document_id, carried.passage_start = p.document_id, p.document_start
            carried.passage_end, carried.start, carried.end = p.document_start + len(p.text), best.start, best.end
    reply.carried = carried.model_dump_json(exclude_none=True)
    return reply


def reply_from_carried(turn: CarriedTurn, store) -> Reply:
    """An earlier turn, its passage looked up in the index (so only the index's text is shown)."""
    reply = Reply(question=turn.question, understood=turn.understood, no_answer=turn.answer is None,
                  carried=turn.model_dump_json(exclude_none=True))
    if turn.answer is None:
        return reply
    passage = None
    doc = store.document(turn.document_id) if store is not None and turn.document_id else None
    ps, pe, s, e = turn.passage_start, turn.passage_end, turn.start, turn.end
    if doc is not None and None not in (ps, pe, s, e) and ps <= pe <= len(doc.text) and s <= e <= pe - ps:
        passage = marked(doc.text[ps:pe], s, e, doc.id, doc.film, ps)
    reply.answers = [AnswerView(text=turn.answer, film=turn.film, score=turn.score or 0.0, passage=passage)]
    return reply


def parse_carried(values: list[str]) -> list[CarriedTurn]:
    """The hidden ``turn`` fields; a damaged one is dropped rather than failing the page."""
    turns = []
    for value in values[-MAX_CARRIED_TURNS:]:
        try:
            turns.append(CarriedTurn.model_validate_json(value))
        except ValidationError:
            log.info("dropped an unreadable carried turn")
    return turns


def load_suggestions(titles: list[str]) -> list[dict[str, str]]:
    """Curated questions (``web/suggestions.json`` in this package) about films that are in the index."""
    try:
        items = json.loads(SUGGESTIONS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("no usable %s", SUGGESTIONS_FILE)
        return []
    return [s for s in items if find_film(s["film"], titles)]


def pick_suggestions(suggestions: list[dict[str, str]]) -> list[dict[str, str]]:
    """The first curated question (the classic "who plays Sera?"), then a few others at random."""
    first, rest = suggestions[:1], suggestions[1:]
    return first + random.sample(rest, min(SUGGESTIONS_SHOWN - len(first), len(rest)))


def plain_error(exc: Exception) -> str:
    """What went wrong, in words for the person at the page."""
    if isinstance(exc, Busy):
        return "The server is busy answering other questions. Try again in a moment."
    if isinstance(exc, IndexUnavailable):
        return "The reviews are not available right now (the index is missing or being rebuilt). Try again shortly."
    if isinstance(exc, BadRequest):
        return f"That question cannot be asked: {exc}."
    return "Something went wrong on the server. Try again; if it keeps happening, tell the operator."


# ----- the routes ------------------------------------------------------------------------------

def mount_web(app: FastAPI, settings: Settings) -> None:
    """Serve the chat page at ``/`` (GET and the no-JS POST) and ``web/static`` at ``/static``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(WEB_DIR / "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    page = env.get_template("index.html")
    signin_page = env.get_template("signin.html")
    router = APIRouter(include_in_schema=False)
    token = api_token(settings)

    def signed_in(request: Request) -> bool:
        return authorized(token, request.headers.get("authorization"), request.cookies.get(COOKIE))

    def signin(error: str | None = None, status: int = 200) -> HTMLResponse:
        return HTMLResponse(signin_page.render(error=error), status_code=status, headers={"Cache-Control": "no-store"})

    def store_or_none():
        try:
            return app.state.pipeline.store
        except IndexUnavailable as err:
            log.warning("page without index: %s", err)
            return None

    def render(replies: list[Reply], film: str | None = None, question: str = "", notice: str | None = None,
               status: int = 200) -> HTMLResponse:
        store = store_or_none()
        titles = [t for t, _ in store.films()] if store is not None else []
        suggestions = load_suggestions(titles)
        html = page.render(
            replies=replies, film=film, question=question, titles=titles, notice=notice,
            index_ready=store is not None,
            suggestions=pick_suggestions(suggestions),
            confidence=json.dumps(CONFIDENCE),
            max_question_chars=MAX_QUESTION_CHARS,
        )
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    @router.get("/", response_class=HTMLResponse)
    def chat(request: Request) -> HTMLResponse:
        return render([]) if signed_in(request) else signin()

    @router.post("/signin", response_class=HTMLResponse)
    async def signin_post(request: Request) -> Response:
        given = str((await request.form()).get("token") or "")
        if not token or not same(given, token):
            return signin("That token is not right; check it and try again.", status=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict", path="/")
        return response

    @router.post("/signout")
    def signout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.post("/", response_class=HTMLResponse)
    async def chat_post(request: Request) -> HTMLResponse:
        if not signed_in(request):
            return signin("Sign in first: this server needs its API token.", status=401)
        form = await request.form()
        question = str(form.get("question") or "").strip()
        film_text = str(form.get("film") or "").strip()
        store = store_or_none()
        carried = parse_carried([str(v) for v in form.getlist("turn")])
        replies = [reply_from_carried(t, store) for t in carried]

        if form.get("action") == "clear-film":
            return render(replies, None, question)
        titles = [t for t, _ in store.films()] if store is not None else []
        film = find_film(film_text, titles) if film_text else None
        if film_text and film is None:
            return render(replies, None, question, notice=f"There is no film called “{film_text}” in the reviews; "
                                                          "pick one from the list or leave the film empty.")
        if not question:
            return render(replies, film, question, notice="Type a question first, such as “who plays Sera?”.")
        try:
            req = AskRequest(question=question, filters={"film": film} if film else None,
                             history=[Turn(**t.history()) for t in carried])
            reply = reply_from_response(result_to_response(await app.state.answer(req)))
        except ValidationError as err:
            reply = Reply(question=question, error="That question cannot be asked: " +
                          "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors()) + ".")
        except Exception as err:  # shown in the conversation; the question stays in the input
            if not isinstance(err, IndexUnavailable):
                log.exception("no-JS ask failed")
            reply = Reply(question=question, error=plain_error(err))
        if reply.error:
            return render([*replies, reply], film, question)
        return render([*replies, reply], film)

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
