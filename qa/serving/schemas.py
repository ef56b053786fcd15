"""The API's request and response shapes, and their limits (shared by the API and the chat)."""
from __future__ import annotations

import re
from dataclasses import asdict

from pydantic import BaseModel, ConfigDict, Field, field_validator

from qa.answering.pipeline import Result

MAX_QUESTION_CHARS = 1000
MAX_HISTORY_TURNS = 50
# A question needs one character that is neither white space nor a control character
# (control characters are turned into spaces).
VISIBLE_CHARACTER = r"[^\s\u0000-\u001f\u007f-\u009f]"
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f]")


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


def describe_errors(errors) -> str:
    """Pydantic's errors as one sentence naming each field."""
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request body"
        message = err.get("msg", "invalid").removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "is not a known field"
        if err.get("type") == "json_invalid":
            at = [p for p in err.get("loc", ()) if isinstance(p, int)]
            where, message = "request body", "is not valid JSON" + (f" (at character {at[0]})" if at else "")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
