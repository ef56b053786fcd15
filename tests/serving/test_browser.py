"""The chat in a real browser: headless Chromium driven by Playwright, against a real server.

The server is uvicorn in a background thread over an index built once per
session from documents/ plus one hostile review (HTML in its text and title).
Screenshots go to test-output/; ``docs/chat.png`` (the README's) is refreshed
by the first tests.
"""
from __future__ import annotations

import json
import shutil
import socket
import threading
import time
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output"
README_SCREENSHOT = ROOT / "docs" / "chat.png"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update"]
HOSTILE_TITLE = "Hostile Markup <i>Test</i>"
HOSTILE = f"""---
title: "{HOSTILE_TITLE}"
year: 2020
---
Hostile Markup (2020)

This review tries to smuggle markup into the page: <script>alert(1)</script> and <img src=x onerror=alert(2)>.
The villain, a hacker called Mallory, is played by Eve Intruder, and the film was directed by Trudy Tester.
"""

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip("Chromium not installed at /usr/bin/chromium: apt-get install chromium", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


# ----- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser_index(tmp_path_factory):
    """documents/ plus the hostile review, indexed once."""
    from qa.ingest.indexer import index_paths
    from qa.settings import Settings

    folder = tmp_path_factory.mktemp("browser-docs")
    for review in (ROOT / "documents").glob("*.md"):
        shutil.copy(review, folder / review.name)
    (folder / "hostile.md").write_text(HOSTILE, encoding="utf-8")
    settings = Settings(index_dir=tmp_path_factory.mktemp("browser-index") / "index")
    report = index_paths([folder], settings)
    assert report.added == 16 and not report.problems
    return settings


@pytest.fixture(scope="session")
def base_url(browser_index):
    import uvicorn

    from qa.serving.app import create_app

    app = create_app(browser_index)
    app.state.pipeline.warm_up()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light",
                                  reduced_motion="reduce", base_url=base_url, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.problems = problems
    page.goto("/")
    yield page
    context.close()


def ask(page: Page, question: str):
    """Type a question, press Enter, wait for the reply; the reply's locator."""
    box = page.get_by_label("Your question")
    box.fill(question)
    with page.expect_response("**/ask") as response:
        box.press("Enter")
    turn = page.locator(".conversation > .turn").last
    reply = turn.locator(".bubble-bot")
    expect(reply).not_to_have_class("bubble bubble-bot bubble-pending")
    return reply, json.loads(response.value.request.post_data)


def shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / name))


# ----- tests -----------------------------------------------------------------------------------

def test_who_plays_sera_is_answered_with_the_name_marked_in_the_passage(page):
    expect(page.locator(".suggestion").first).to_be_visible()
    shot(page, "chat-welcome.png")
    reply, sent = ask(page, "who plays Sera?")
    assert sent == {"question": "who plays Sera?", "filters": None, "history": []}
    expect(reply.locator(".answer strong")).to_have_text("Elisabeth Shue")
    expect(reply.locator(".meta .film-name").first).to_have_text("Leaving Las Vegas")
    word = reply.locator(".confidence").first
    assert word.evaluate("e => e.firstChild.textContent") in ("confident", "likely", "unsure")
    assert word.get_attribute("title").startswith("Score ")
    passage = reply.locator(":scope > .passage")
    expect(passage.locator("mark")).to_have_text("Elisabeth Shue")
    expect(passage.locator("cite")).to_have_text("Leaving Las Vegas")
    # the suggestions make way for the conversation; the box is empty and keeps focus
    expect(page.locator("#welcome")).to_be_hidden()
    expect(page.get_by_label("Your question")).to_have_value("")
    expect(page.get_by_label("Your question")).to_be_focused()

    # the passage opens out to the whole review, the answer still marked
    page.get_by_role("button", name="Read the whole review").first.click()
    expect(passage.locator(".passage-text")).to_contain_text("Leaving Las Vegas (1995)")
    expect(passage.locator("mark")).to_have_text("Elisabeth Shue")
    page.get_by_role("button", name="Show only the passage").click()
    expect(passage.locator(".passage-text")).not_to_contain_text("Leaving Las Vegas (1995)")

    # the passages read fold out
    passages = reply.locator(".fold-passages")
    expect(passages.locator(".passage").first).to_be_hidden()
    passages.locator("summary").click()
    expect(passages.locator(".passage").first).to_be_visible()
    assert not page.problems, page.problems


def test_a_follow_up_is_resolved_to_the_same_film_and_the_history_sent(page):
    ask(page, "who plays Sera?")
    reply, sent = ask(page, "when was it released?")
    assert sent["history"] == [{"question": "who plays Sera?", "answer": "Elisabeth Shue",
                                "film": "Leaving Las Vegas"}]
    expect(reply.locator(".understood")).to_have_text("Understood as: when was Leaving Las Vegas released?")
    cites = reply.locator(".passage cite").all_text_contents()
    assert cites and set(cites) == {"Leaving Las Vegas"}
    if reply.locator(".answer strong").count():
        expect(reply.locator(":scope > .passage mark")).to_have_count(1)
    # the README's picture: the conversation from its first question
    page.evaluate("window.scrollTo(0, document.querySelector('.turn').getBoundingClientRect().top + scrollY - 16)")
    shot(page, "chat-follow-up.png")
    if os.environ.get("QA_UPDATE_README_SCREENSHOT"):  # refresh docs/chat.png on purpose only
        page.screenshot(path=str(README_SCREENSHOT))
    assert not page.problems, page.problems


def test_the_film_filter_restricts_answers_and_is_a_removable_chip(page):
    films = page.request.get("/films").json()
    expect(page.locator("#film-list option")).to_have_count(len(films))
    film = page.get_by_label("Film", exact=True)
    film.fill("leaving las vegas")  # forgiving: case, a missing capital
    film.press("Enter")
    chip = page.locator("#film-chip")
    expect(chip).to_be_visible()
    expect(chip).to_contain_text("Leaving Las Vegas")
    expect(page.get_by_label("Your question")).to_be_focused()
    reply, sent = ask(page, "who directed it?")
    assert sent["filters"] == {"film": "Leaving Las Vegas"}
    assert set(reply.locator(".passage cite").all_text_contents()) == {"Leaving Las Vegas"}
    page.get_by_role("button", name="Remove the film filter: Leaving Las Vegas").click()
    expect(chip).to_be_hidden()
    expect(film).to_be_visible()
    expect(film).to_be_focused()
    # an unknown film is refused in words, and nothing is asked
    film.fill("Citizen Kane")
    film.press("Enter")
    expect(page.locator("#form-notice")).to_contain_text("There is no film called “Citizen Kane”")


def test_a_question_the_reviews_do_not_answer_gets_the_closest_passages(page):
    reply, _ = ask(page, "How many moons does Jupiter have?")
    expect(reply.locator(".answer-none")).to_have_text("The reviews don’t say.")
    summary = reply.locator(".fold-passages summary")
    expect(summary).to_contain_text("Show the closest passages")
    summary.click()
    expect(reply.locator(".fold-passages .passage").first).to_be_visible()


def test_progress_is_shown_while_waiting_and_errors_are_said_in_words(page):
    held = []
    page.route("**/ask", lambda route: held.append(route))
    box = page.get_by_label("Your question")
    box.fill("who plays Sera?")
    box.press("Shift+Enter")  # a new line, not a question
    box.type("please")
    expect(box).to_have_value("who plays Sera?\nplease")
    box.press("Enter")
    expect(page.locator(".bubble-pending")).to_contain_text("Reading the reviews")
    expect(page.locator("#send")).to_have_attribute("aria-disabled", "true")
    page.wait_for_function("() => true")
    assert len(held) == 1
    held[0].fulfill(status=503, content_type="application/json",
                    body=json.dumps({"detail": "The server is busy answering other questions; retry in a second."}))
    error = page.locator(".bubble-error")
    expect(error).to_have_text("Reply:The server is busy answering other questions; retry in a second.")
    expect(box).to_have_value("who plays Sera?\nplease")  # kept to retry
    expect(box).to_be_focused()
    page.unroute("**/ask")
    page.route("**/ask", lambda route: route.abort())
    box.press("Enter")
    expect(page.locator(".bubble-error").last).to_contain_text("Could not reach the server")
    shot(page, "chat-error.png")


def test_the_page_works_without_javascript(browser, base_url):
    context = browser.new_context(java_script_enabled=False, base_url=base_url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Your question").fill("who plays Sera?")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.wait_for_load_state()
    reply = page.locator(".conversation > .turn").last.locator(".bubble-bot")
    expect(reply.locator(".answer strong")).to_have_text("Elisabeth Shue")
    expect(reply.locator(":scope > .passage mark")).to_have_text("Elisabeth Shue")
    page.get_by_label("Your question").fill("when was it released?")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.wait_for_load_state()
    turns = page.locator(".conversation > .turn")
    expect(turns).to_have_count(2)
    expect(turns.first.locator("mark")).to_have_text("Elisabeth Shue")
    expect(turns.last.locator(".understood")).to_have_text("Understood as: when was Leaving Las Vegas released?")
    # the details fold out without script
    turns.first.locator(".bubble-user").scroll_into_view_if_needed()
    shot(page, "chat-no-js.png")
    context.close()


def test_html_in_a_question_or_a_review_is_shown_as_text(page):
    page.evaluate("window.__pwned = 0")
    film = page.get_by_label("Film", exact=True)
    film.fill(HOSTILE_TITLE)
    film.press("Enter")
    expect(page.locator("#film-chip-text")).to_have_text(HOSTILE_TITLE)
    question = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2> who plays Mallory?"
    reply, _ = ask(page, question)
    expect(page.locator(".bubble-user").last).to_contain_text(question)
    reply.locator(".fold-passages summary").click()
    expect(reply.locator(".fold-passages .passage-text").first).to_contain_text("<script>alert(1)</script>")
    expect(reply.locator(".fold-passages .passage-text").first).to_contain_text("<img src=x onerror=alert(2)>")
    assert page.locator(".conversation img, .conversation script, .conversation i").count() == 0
    assert page.evaluate("window.__pwned") == 0
    assert not [p for p in page.problems if "dialog" in p], page.problems
    shot(page, "chat-injection.png")


def test_phone_dark_theme_fits_the_screen(browser, base_url):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", base_url=base_url,
                                  is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    page.goto("/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 17, 14)"  # the dark theme followed the system setting
    ask(page, "who plays Sera?")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "chat-phone-dark.png")
    context.close()
