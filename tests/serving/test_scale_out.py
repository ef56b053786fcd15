"""Serving from Milvus, as the README's "Scaling out" deploys it: `qa serve` over a Milvus (Lite) server.

* `qa index --store milvus-lite:FILE` then `qa ask --store ... --json` (the embedded file);
* `QA_STORE=http://127.0.0.1:PORT qa serve --workers 2`, asked over HTTP and in the browser chat;
* Milvus stopped: `/ask` answers 503 saying so, and answers again once it is back, with no restart;
* the CLI against an unreachable Milvus prints one line and exits non-zero.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from qa.ingest.indexer import index_paths
from qa.ingest.loaders import load_path
from qa.serving.app import create_app
from qa.settings import Settings
from tests.milvus_server import LiteServer, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ROOT / "documents"
CHROMIUM = Path("/usr/bin/chromium")


def qa(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "qa", *args], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **(env or {})}, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_index_and_ask_through_a_milvus_lite_file(tmp_path):
    store = f"milvus-lite:{tmp_path / 'qa.db'}"
    qa("index", "documents", "--store", store, "--quiet")
    answer = json.loads(qa("ask", "who plays Sera?", "--store", store, "--json").stdout)["answers"][0]
    [document] = load_path(DOCUMENTS / "leaving-las-vegas.md")
    text = document.text
    assert answer["text"] == "Elisabeth Shue"
    assert text[answer["document_start"]:answer["document_end"]] == "Elisabeth Shue"
    info = json.loads(qa("info", "--store", store, "--json").stdout)
    assert info["backend"] == "milvus" and info["documents"] == 15


def test_the_cli_says_in_one_line_that_milvus_is_unreachable():
    result = qa("ask", "who plays Sera?", "--store", f"http://127.0.0.1:{free_port()}", check=False,
                env={"QA_MILVUS_TIMEOUT": "3"})
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "unreachable" in result.stderr


@pytest.fixture
def own_server(tmp_path):
    """A Lite server this test may stop and start again (same data, same port)."""
    server = LiteServer(tmp_path / "milvus")
    server.start()
    yield server
    server.stop()


def test_ask_answers_503_while_milvus_is_down_and_recovers_without_a_restart(own_server):
    settings = Settings(store=own_server.uri, milvus_collection="recovery", milvus_timeout=3)
    index_paths([DOCUMENTS], settings)
    client = TestClient(create_app(settings))
    assert client.post("/ask", json={"question": "who plays Sera?"}).json()["answers"][0]["text"] == "Elisabeth Shue"
    own_server.stop()
    time.sleep(1.1)  # past the revision check's second
    down = client.post("/ask", json={"question": "who plays Sera?"})
    assert down.status_code == 503 and "unreachable" in down.json()["detail"] and "Milvus" in down.json()["detail"]
    assert client.get("/healthz").status_code == 503
    own_server.start()
    deadline, answer = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        back = client.post("/ask", json={"question": "who plays Sera?"})
        if back.status_code == 200:
            answer = back.json()["answers"][0]["text"]
            break
        time.sleep(0.5)
    assert answer == "Elisabeth Shue"


@pytest.fixture
def served(milvus_lite_server, tmp_path):
    """`qa serve --workers 2` over a collection of documents/ in the session's Lite server."""
    settings = Settings(store=milvus_lite_server.uri, milvus_collection=f"served{os.getpid()}")
    index_paths([DOCUMENTS], settings)
    port = free_port()
    env = {**os.environ, "QA_STORE": milvus_lite_server.uri, "QA_MILVUS_COLLECTION": settings.milvus_collection}
    process = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--port", str(port), "--workers", "2"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(timeout=30)


def test_two_workers_answer_from_milvus(served):
    with httpx.Client(base_url=served, timeout=60) as client:
        answers = [client.post("/ask", json={"question": q}).json() for q in
                   ["who plays Sera?", "who directed Fargo?", "who plays Sera"]]
    assert [a["answers"][0]["text"] for a in answers] == ["Elisabeth Shue", "Joel Coen", "Elisabeth Shue"]


@pytest.mark.browser
def test_the_browser_chat_answers_from_milvus(served):
    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed at /usr/bin/chromium: apt-get install chromium")
    import threading

    failures: list[BaseException] = []

    def drive() -> None:  # in its own thread: Playwright's sync API refuses a thread with an asyncio loop
        try:
            chat(served)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(err)
    thread = threading.Thread(target=drive)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def chat(served: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update"])
        page = browser.new_page(base_url=served)
        page.goto("/")
        page.get_by_label("Your question").fill("who plays Sera?")
        with page.expect_response("**/ask"):
            page.get_by_label("Your question").press("Enter")
        reply = page.locator(".conversation > .turn").last.locator(".bubble-bot")
        expect(reply.locator(".answer strong")).to_have_text("Elisabeth Shue", timeout=30_000)
        expect(reply.locator(".passage mark").first).to_have_text("Elisabeth Shue")
        browser.close()
