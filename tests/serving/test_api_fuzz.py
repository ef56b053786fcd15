"""Fuzzing the HTTP API from its own OpenAPI schema (Schemathesis + Hypothesis).

Every operation gets generated requests, valid and invalid, from two of Schemathesis's phases:
*coverage* (the values the schema defines and those just outside it: each enum value, limits, a
missing required field, a wrong type, an unexpected method) and *fuzzing* (random data, valid and
invalid, bytes that are not text included). No response may be a 5xx, and every response must match
the schema the app publishes (status codes, content types, bodies; schema-valid data must be
accepted). Also: the same command an operator runs against a real server, and hand-written hostile
questions and bodies.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from qa.serving.app import create_app

pytestmark = pytest.mark.integration  # builds the shipped index, loads the models, starts a server

# Coverage generates every case the schema defines (max-examples does not bound it); fuzzing is bounded.
FUZZ_CONFIG = {"seed": 1, "generation": {"max-examples": 60},
               "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
                          "fuzzing": {"enabled": True}, "stateful": {"enabled": False}}}


@pytest.fixture(scope="module")
def app(shipped_settings):
    return create_app(shipped_settings)


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(FUZZ_CONFIG))


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    """Schemathesis 4.32.5's fixture-backed schemas read ``node._nodeid``, which pytest 9 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case):
    """One test per operation, run through the coverage and the fuzzing phases."""
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)
    case.validate_response(response)  # every check, schema-valid data accepted included


def test_the_fuzz_test_covers_every_operation_in_both_phases(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert {"POST /ask", "GET /films", "GET /healthz"} <= labels
    phases = api_schema.config.phases_for(operation=None)
    assert phases.coverage.enabled and phases.fuzzing.enabled


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_schemathesis_cli_coverage_and_fuzzing_phases_find_nothing(shipped_settings, tmp_path):
    """The command an operator would run, against a real server: `st run ... --checks all`."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "qa", "serve", "--port", str(port),
                               "--index-dir", str(shipped_settings.index_dir)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(240):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        st = Path(sys.executable).parent / "st"
        run = subprocess.run([str(st), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", "all",
                              "--phases", "coverage,fuzzing", "--max-examples", "25", "--seed", "1"],
                             capture_output=True, text=True, timeout=600, cwd=tmp_path)  # its cache stays there
        assert run.returncode == 0, run.stdout[-4000:]
        assert "Coverage" in run.stdout and "Fuzzing" in run.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_malformed_json_is_a_documented_422_that_says_where(app):
    response = TestClient(app).post("/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"] == "request body: is not valid JSON (at character 13)"
    schema = TestClient(app).get("/openapi.json").json()
    assert "422" in schema["paths"]["/ask"]["post"]["responses"]


def test_the_schema_lists_the_filter_keys_of_this_index(app):
    filters = TestClient(app).get("/openapi.json").json()["components"]["schemas"]["AskRequest"]["properties"]["filters"]
    keys = next(o for o in filters["anyOf"] if o.get("type") == "object")["propertyNames"]["enum"]
    assert {"document_id", "film", "title", "director", "year"} <= set(keys)


HOSTILE = [
    "\u200b\u200b\u200b",                        # zero-width spaces only
    "🎬🍿🎥",                                     # emoji only
    "¿Quién interpreta a Sera en Leaving Las Vegas?",
    "誰がセラを演じていますか",
    "<script>alert(1)</script> who plays Sera?",
    "' OR 1=1; DROP TABLE documents; --",
    "\"quoted\" AND NEAR(sera) OR * ^ : ( )",      # FTS5 query syntax must be inert
    "who " * 240,                                 # long but under the limit
    "who plays \u0000 Sera?",                    # a NUL character inside
]


@pytest.mark.parametrize("question", HOSTILE)
def test_hostile_questions_never_crash(app, question):
    response = TestClient(app).post("/ask", json={"question": question})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert isinstance(response.json()["answers"], list)
    else:
        assert response.json()["detail"]


def test_binary_body_is_a_422(app):
    response = TestClient(app).post("/ask", content=bytes(range(256)), headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_a_body_that_is_not_utf8_is_a_422_not_fastapis_undocumented_400(app):
    """FastAPI answers 400 when it cannot even decode the bytes; the API documents a 422 for it."""
    response = TestClient(app).post("/ask", content=b'{"question": "\xff\xfe who?"}',
                                    headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == "request body: is not valid JSON (it could not be read as UTF-8 text)"


@pytest.mark.parametrize("path", ["/", "/signin"])
def test_a_malformed_chat_form_keeps_its_400_and_is_not_called_json(app, path):
    form = b"--xx\r\nContent-Disposition: form-data\r\n\r\nv\r\n--xx--\r\n"  # a part with no name
    response = TestClient(app).post(path, content=form, headers={"content-type": "multipart/form-data; boundary=xx"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"] and "JSON" not in response.json()["detail"]


def test_huge_history_is_refused_with_a_message(app):
    history = [{"question": "q"}] * 51
    response = TestClient(app).post("/ask", json={"question": "who?", "history": history})
    assert response.status_code == 422 and "history" in response.json()["detail"]
