"""Fuzzing the HTTP API from its own OpenAPI schema (Schemathesis + Hypothesis).

Every operation gets generated requests, valid and invalid. No response may be a
5xx, and every response must match the schema the app publishes (status codes,
content types, bodies). Also: hand-written hostile questions.
"""
from __future__ import annotations

import pytest
import schemathesis
from schemathesis import checks
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from qa.serving.app import create_app


@pytest.fixture(scope="module")
def app(shipped_settings):
    return create_app(shipped_settings)


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_no_server_errors_and_responses_match_the_schema(app):
    checked = []
    for operation in operations(app):
        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def call(case):
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, case.body, response.text)
            # Filter fields are checked against the index's own metadata, which no static
            # schema can list, so a schema-valid unknown field is rightly a 422.
            case.validate_response(response, excluded_checks=[checks.positive_data_acceptance])

        call()
        checked.append(operation.label)
    assert "POST /ask" in checked and "GET /films" in checked


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


def test_huge_history_is_refused_with_a_message(app):
    history = [{"question": "q"}] * 51
    response = TestClient(app).post("/ask", json={"question": "who?", "history": history})
    assert response.status_code == 422 and "history" in response.json()["detail"]
