"""The chat page served by the app: the page, the no-JS form post, escaping, security headers.

These tests use a small in-memory pipeline (no models, no index on disk) whose
answers carry offsets like the real reader's; the browser tests drive the real one.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from qa.serving.app import create_app
from qa.serving.deps import Busy
from qa.answering.conversation import resolve_question
from qa.answering.pipeline import Result
from qa.schema import Answer, Document, Passage
from qa.settings import Settings
from qa.stores.base import IndexUnavailable
from qa.serving.chat import CONFIDENCE, confidence_word
from qa.serving.security import CSP

LLV = ("Based on the novel, the film stars Nicolas Cage as Ben Sanderson, a screenwriter, "
       "and Elisabeth Shue as Sera, a compassionate sex worker.")
LLV_DATE = "Leaving Las Vegas is a 1995 drama directed by Mike Figgis."
HOSTILE = "A <script>alert(1)</script> review with <img src=x onerror=alert(2)> in it, directed by Evil Person."
DOCS = {
    "leaving-las-vegas": Document(id="leaving-las-vegas", film="Leaving Las Vegas", title="Leaving Las Vegas",
                                  text=f"{LLV_DATE}\n\n{LLV}"),
    "jaws": Document(id="jaws", film="Jaws", title="Jaws", text="Jaws is directed by Steven Spielberg."),
    "hostile": Document(id="hostile", film="<b>Bold</b> Film", title="x", text=HOSTILE),
}
# question keyword -> (document, answer text); offsets are computed here as the reader would
KNOWN = {"sera": ("leaving-las-vegas", "Elisabeth Shue"), "released": ("leaving-las-vegas", "1995"),
         "directed": ("leaving-las-vegas", "Mike Figgis"), "evil": ("hostile", "<img src=x onerror=alert(2)>")}


class FakeStore:
    manifest = SimpleNamespace(documents=len(DOCS), passages=4, embedding_model="fake")

    def films(self):
        return sorted((d.film, 1) for d in DOCS.values())

    def document(self, document_id):
        return DOCS.get(document_id)


class FakePipeline:
    """Resolves follow-ups with the real ``resolve_question``; answers from ``KNOWN``."""

    def __init__(self):
        self.calls: list[dict] = []
        self.fail: Exception | None = None
        self.store = FakeStore()

    def passages(self, doc: Document) -> list[Passage]:
        out, start = [], 0
        for i, text in enumerate(doc.text.split("\n\n")):
            out.append(Passage(id=f"{doc.id}#{i}", document_id=doc.id, text=text, document_start=start,
                               film=doc.film, title=doc.title, score=0.5))
            start += len(text) + 2
        return out

    def ask(self, question, top_k=None, filters=None, history=()):
        self.calls.append({"question": question, "filters": filters, "history": list(history)})
        if self.fail:
            raise self.fail
        titles = [t for t, _ in self.store.films()]
        resolved = resolve_question(question, history, titles, filters)
        wanted = (resolved.filters or {}).get("film")
        docs = [d for d in DOCS.values() if not wanted or d.film == wanted]
        passages = [p for d in docs for p in self.passages(d)]
        answers = []
        for key, (doc_id, text) in KNOWN.items():
            if key in question.lower():
                for p in passages:
                    if p.document_id == doc_id and text in p.text:
                        start = p.text.index(text)
                        answers.append(Answer.in_passage(p, start, start + len(text), 0.83))
                        answers.append(Answer.in_passage(p, 0, 5, 0.5))  # a weaker second answer
        read = sorted(passages, key=lambda p: all(a.passage_id != p.id for a in answers))[:3]
        return Result(question=question, answers=answers, passages=read, no_answer=not answers,
                      took_ms=1, resolved_question=resolved.question, film=resolved.film)


@pytest.fixture
def pipeline() -> FakePipeline:
    return FakePipeline()


@pytest.fixture
def client(tmp_path, pipeline) -> TestClient:
    return TestClient(create_app(Settings(index_dir=tmp_path / "index"), pipeline))


class Page(HTMLParser):
    """What the tests look at in a rendered page."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts: list[dict] = []
        self.attrs: list[tuple[str, dict]] = []
        self.marks: list[str] = []
        self.strong: list[str] = []
        self._in: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs.append((tag, attrs))
        if tag == "script":
            self.scripts.append(attrs)
        self._in.append(tag)
        if tag == "mark":
            self.marks.append("")
        if tag == "strong":
            self.strong.append("")

    def handle_endtag(self, tag):
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data):
        if "mark" in self._in:
            self.marks[-1] += data
        if "strong" in self._in:
            self.strong[-1] += data

    def hidden(self, name: str) -> list[str]:
        return [a.get("value", "") for t, a in self.attrs
                if t == "input" and a.get("type") == "hidden" and a.get("name") == name and "disabled" not in a]

    def textarea_value(self, html: str) -> str:
        return re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S).group(1)


def test_page_renders_an_empty_conversation_with_suggestions_and_the_film_list(client):
    res = client.get("/")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    html = res.text
    page = Page(html)
    assert 'method="post"' in html and 'action="/#latest"' in html
    assert '<label class="visually-hidden" for="question">Your question</label>' in html
    assert 'aria-live="polite"' in html
    options = [a["value"] for t, a in page.attrs if t == "option"]
    assert options == ["&lt;b&gt;Bold&lt;/b&gt; Film", "Jaws", "Leaving Las Vegas"] or \
        options == ["<b>Bold</b> Film", "Jaws", "Leaving Las Vegas"]
    # suggestions only for films in the index: here Leaving Las Vegas and Jaws
    suggested = [a["data-question"] for t, a in page.attrs if t == "button" and "data-question" in a]
    assert suggested == ["Who plays Sera?", "Who plays Quint?"]


def test_page_has_no_inline_script_style_or_handlers(client):
    html = client.get("/").text
    page = Page(html)
    assert page.scripts and all(s.get("src", "").startswith("/static/") for s in page.scripts)
    assert "<style" not in html
    for tag, attrs in page.attrs:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)


def test_security_headers_on_page_api_static_and_errors(client):
    for path in ("/", "/films", "/static/app.js", "/static/chat.css", "/no-such-page", "/healthz"):
        res = client.get(path)
        assert res.headers["content-security-policy"] == CSP, path
        assert res.headers["x-content-type-options"] == "nosniff"
        assert res.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
    res = client.post("/ask", json={"question": "who plays Sera?"})
    assert res.status_code == 200 and res.headers["content-security-policy"] == CSP


def test_docs_pages_get_a_csp_that_lets_their_inline_script_run(client):
    for path in ("/docs", "/redoc"):
        res = client.get(path)
        assert res.status_code == 200
        csp = res.headers["content-security-policy"]
        assert "script-src 'self' 'unsafe-inline'" in csp and "frame-ancestors 'none'" in csp


def test_static_files_are_served_with_their_types(client):
    assert client.get("/static/app.js").headers["content-type"].split(";")[0] in (
        "text/javascript", "application/javascript")
    assert client.get("/static/chat.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/icon.svg").headers["content-type"].startswith("image/svg+xml")


def test_no_js_post_renders_the_answer_marked_in_its_passage(client):
    res = client.post("/", data={"question": "who plays Sera?"})
    assert res.status_code == 200
    page = Page(res.text)
    assert "Elisabeth Shue" in page.strong
    assert page.marks[0] == "Elisabeth Shue"
    assert "confident" in res.text and 'title="Score 0.83 out of 1"' in res.text
    assert "1 more answer" in res.text and "Show the passages read (3)" in res.text
    # the turn is carried for the next post, and the question box is empty again
    [turn] = page.hidden("turn")
    carried = json.loads(turn)
    assert carried["question"] == "who plays Sera?" and carried["answer"] == "Elisabeth Shue"
    assert carried["film"] == "Leaving Las Vegas"
    assert page.textarea_value(res.text) == ""


def test_no_js_follow_up_is_resolved_and_the_whole_conversation_rendered(client, pipeline):
    first = Page(client.post("/", data={"question": "who plays Sera?"}).text).hidden("turn")
    res = client.post("/", data={"question": "when was it released?", "turn": first})
    assert pipeline.calls[-1]["history"] == [
        {"question": "who plays Sera?", "answer": "Elisabeth Shue", "film": "Leaving Las Vegas"}]
    html = res.text
    assert "Understood as: <q>when was Leaving Las Vegas released?</q>" in html
    page = Page(html)
    # the earlier turn is still shown, its passage looked up in the index and marked
    assert page.marks[:2] == ["Elisabeth Shue", "1995"]
    assert html.index("who plays Sera?") < html.index("when was it released?")
    assert len(page.hidden("turn")) == 2


def test_no_js_film_filter_is_matched_forgivingly_and_shown_as_a_chip(client, pipeline):
    res = client.post("/", data={"question": "who directed it?", "film": "leaving las vegas!"})
    assert pipeline.calls[-1]["filters"] == {"film": "Leaving Las Vegas"}
    page = Page(res.text)
    assert page.hidden("film") == ["Leaving Las Vegas"]  # the chip's value, carried to the next post
    assert 'id="film-chip"' in res.text and 'id="film-chip" hidden' not in res.text
    assert "Mike Figgis" in page.strong


def test_no_js_unknown_film_is_refused_in_words_and_the_question_kept(client, pipeline):
    res = client.post("/", data={"question": "who directed it?", "film": "Citizen Kane"})
    assert not pipeline.calls
    assert "There is no film called “Citizen Kane” in the reviews" in res.text
    assert Page(res.text).textarea_value(res.text) == "who directed it?"


def test_no_js_removing_the_chip_keeps_the_conversation_and_asks_nothing(client, pipeline):
    first = Page(client.post("/", data={"question": "who plays Sera?"}).text).hidden("turn")
    res = client.post("/", data={"question": "", "film": "Jaws", "action": "clear-film", "turn": first})
    assert len(pipeline.calls) == 1
    page = Page(res.text)
    assert page.hidden("film") == [] and page.hidden("turn") == first
    assert 'id="film-chip" hidden' in res.text


def test_no_js_no_answer_says_so_and_offers_the_closest_passages(client):
    res = client.post("/", data={"question": "what is the capital of France?"})
    assert "The reviews don’t say." in res.text
    assert "Show the closest passages (3)" in res.text
    assert json.loads(Page(res.text).hidden("turn")[0]) == {"question": "what is the capital of France?"}


@pytest.mark.parametrize("error, words", [
    (Busy(), "The server is busy answering other questions. Try again in a moment."),
    (IndexUnavailable("gone"), "The reviews are not available right now"),
    (RuntimeError("/secret/path exploded"), "Something went wrong on the server."),
])
def test_no_js_errors_appear_in_plain_words_with_the_question_kept(client, pipeline, error, words):
    pipeline.fail = error
    res = client.post("/", data={"question": "who plays Sera?"})
    assert res.status_code == 200
    assert 'bubble-error' in res.text and words in res.text
    assert "/secret/path" not in res.text
    assert Page(res.text).textarea_value(res.text) == "who plays Sera?"


def test_with_an_api_token_the_chat_signs_in_once_and_then_works(tmp_path, pipeline):
    settings = Settings(index_dir=tmp_path / "index", api_token="s3cret")
    client = TestClient(create_app(settings, pipeline))
    page = client.get("/")
    assert page.status_code == 200 and 'action="/signin"' in page.text and 'id="conversation"' not in page.text
    res = client.post("/", data={"question": "who plays Sera?"})
    assert res.status_code == 401 and "Sign in first" in res.text and not pipeline.calls
    assert client.post("/ask", json={"question": "who plays Sera?"}).status_code == 401
    wrong = client.post("/signin", data={"token": "guess"})
    assert wrong.status_code == 401 and "not right" in wrong.text and "qa_session" not in wrong.headers.get("set-cookie", "")
    signed = client.post("/signin", data={"token": "s3cret"}, follow_redirects=False)
    cookie = signed.headers["set-cookie"]
    assert signed.status_code == 303 and "HttpOnly" in cookie and "SameSite=strict" in cookie and "s3cret" not in cookie
    assert 'id="conversation"' in client.get("/").text
    assert client.post("/ask", json={"question": "who plays Sera?"}).status_code == 200
    assert client.post("/", data={"question": "who plays Sera?"}).status_code == 200 and pipeline.calls
    client.post("/signout")
    assert client.post("/ask", json={"question": "who plays Sera?"}).status_code == 401


def test_no_js_empty_question_asks_for_one(client, pipeline):
    res = client.post("/", data={"question": "   "})
    assert "Type a question first" in res.text and not pipeline.calls


def test_damaged_or_forged_carried_turns_are_dropped_or_shown_as_text(client, pipeline):
    forged = json.dumps({"question": "<script>alert(3)</script>", "answer": "x", "document_id": "jaws",
                         "passage_start": 0, "passage_end": 9999, "start": 0, "end": 4})
    res = client.post("/", data={"question": "who plays Sera?", "turn": ["{not json", forged]})
    assert res.status_code == 200
    assert pipeline.calls[-1]["history"] == [{"question": "<script>alert(3)</script>", "answer": "x", "film": None}]
    assert "<script>alert(3)" not in res.text and "&lt;script&gt;alert(3)&lt;/script&gt;" in res.text


def test_question_and_review_html_is_escaped(client):
    res = client.post("/", data={"question": "<script>alert('q')</script> who is evil?"})
    html = res.text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;q&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html  # the answer, marked, as text
    assert "&lt;b&gt;Bold&lt;/b&gt; Film" in html
    page = Page(html)
    assert page.marks[0] == "<img src=x onerror=alert(2)>"
    assert all(s.get("src") for s in page.scripts)


def test_page_without_an_index_still_renders_and_says_why(tmp_path):
    class NoIndex(FakePipeline):
        @property
        def store(self):
            raise IndexUnavailable("no index")

        @store.setter
        def store(self, value):
            pass

    client = TestClient(create_app(Settings(index_dir=tmp_path / "index"), NoIndex()))
    res = client.get("/")
    assert res.status_code == 200 and "The reviews are not indexed yet" in res.text
    assert "<form" in res.text


@pytest.mark.unit
def test_confidence_words_follow_the_thresholds():
    assert [w for _, w in CONFIDENCE] == ["confident", "likely", "unsure"]
    assert confidence_word(0.95) == confidence_word(0.8) == "confident"
    assert confidence_word(0.79) == confidence_word(0.6) == "likely"
    assert confidence_word(0.59) == confidence_word(0.0) == "unsure"
    # the page's script reads the same thresholds from the page
    html = TestClient(create_app(Settings(), SimpleNamespace(store=FakeStore()))).get("/").text
    assert 'data-confidence="[[0.8, &#34;confident&#34;], [0.6, &#34;likely&#34;], [0.0, &#34;unsure&#34;]]"' in html


def test_every_suggested_question_is_answered_by_the_shipped_reviews(shipped_settings):
    """The curated suggestions (qa/serving/web/suggestions.json) against the real pipeline over documents/."""
    from qa.answering.pipeline import Pipeline
    from qa.serving.chat import SUGGESTIONS_FILE

    pipeline = Pipeline(shipped_settings)
    suggestions = json.loads(SUGGESTIONS_FILE.read_text(encoding="utf-8"))
    titles = {t for t, _ in pipeline.store.films()}
    assert {s["film"] for s in suggestions} == titles  # one per shipped film
    wrong = []
    for s in suggestions:
        result = pipeline.ask(s["question"])
        best = None if result.no_answer else result.answers[0]
        if best is None or s["answer"].lower() not in best.text.lower() or best.film != s["film"]:
            wrong.append(f"{s['question']!r}: expected {s['answer']!r}, got {best.text if best else 'no answer'!r}")
    assert not wrong, "\n".join(wrong)
