"""The HTTP API: /ask end to end, validation messages, 503s, /films, /healthz, /documents, token."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from qa.serving.app import create_app
from qa.answering.pipeline import Pipeline
from qa.settings import Settings


@pytest.fixture(scope="module")
def client(shipped_settings):
    return TestClient(create_app(shipped_settings))


def test_ask_who_plays_sera_answers_elisabeth_shue_with_exact_offsets(client):
    response = client.post("/ask", json={"question": "who plays Sera?"})
    assert response.status_code == 200
    body = response.json()
    assert body["no_answer"] is False
    best = body["answers"][0]
    assert best["text"] == "Elisabeth Shue" and best["film"] == "Leaving Las Vegas"
    assert 0 <= best["score"] <= 1
    passage = next(p for p in body["passages"] if p["id"] == best["passage_id"])
    assert passage["text"][best["start"]:best["end"]] == "Elisabeth Shue"
    document = client.get(f"/documents/{best['document_id']}").json()
    assert document["text"][best["document_start"]:best["document_end"]] == "Elisabeth Shue"
    assert best["sources"][0]["passage_id"] == best["passage_id"]
    assert body["resolved_question"] == "who plays Sera?"
    scores = [a["score"] for a in body["answers"]]
    assert scores == sorted(scores, reverse=True)


def test_ask_with_filters_and_history(client):
    response = client.post("/ask", json={
        "question": "who directed it?", "top_k": 3,
        "history": [{"question": "who plays Marge Gunderson?", "answer": "Frances McDormand"}]})
    body = response.json()
    assert response.status_code == 200, body
    assert body["resolved_question"] == "who directed Fargo?"
    assert {p["film"] for p in body["passages"]} == {"Fargo"} and len(body["passages"]) <= 3
    filtered = client.post("/ask", json={"question": "who plays Quint?", "filters": {"film": ["Jaws"]}}).json()
    assert {p["film"] for p in filtered["passages"]} == {"Jaws"}


@pytest.mark.parametrize("payload, message", [
    ({"question": ""}, "question: the question is empty"),
    ({"question": "   \n "}, "question: the question is empty"),
    ({"question": "x" * 1001}, "question: String should have at most 1000 characters"),
    ({"question": "who?", "top_k": 0}, "top_k: Input should be greater than or equal to 1"),
    ({"question": "who?", "top_k": 51}, "top_k: Input should be less than or equal to 50"),
    ({"question": "who?", "filters": {"film": 3}}, "filters.film"),
    ({"question": "who?", "filters": {"colour": "red"}}, "unknown filter field 'colour'"),
    ({"question": "who?", "surprise": 1}, "surprise: is not a known field"),
    ({"question": 42}, "question: Input should be a valid string"),
    ({}, "question: Field required"),
])
def test_bad_requests_get_422_with_a_message_naming_the_field(client, payload, message):
    response = client.post("/ask", json=payload)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_invalid_json_is_a_422(client):
    response = client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON" in response.json()["detail"]


def test_films_and_health(client):
    films = client.get("/films").json()
    assert {"title": "Leaving Las Vegas", "reviews": 1} in films and len(films) >= 13
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["documents"] >= 13 and health["films"] == len(films)


def test_unknown_document_is_404_and_paths_are_not_followed(client):
    for doc_id in ["nope", "../../etc/passwd", "/etc/passwd"]:
        response = client.get(f"/documents/{doc_id}")
        assert response.status_code == 404 and "root:" not in response.text


def test_missing_index_is_503_with_a_clear_message(tmp_path):
    client = TestClient(create_app(Settings(index_dir=tmp_path / "none")))
    response = client.post("/ask", json={"question": "who plays Sera?"})
    assert response.status_code == 503
    assert "qa index" in response.json()["detail"] and str(tmp_path) not in response.text
    assert client.get("/healthz").status_code == 503


def test_api_token_is_required_when_configured(shipped_settings):
    settings = Settings(index_dir=shipped_settings.index_dir, api_token="s3cret")
    client = TestClient(create_app(settings, Pipeline(settings)))
    assert client.get("/films").status_code == 401
    assert client.get("/films", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/films", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200  # health stays open for monitors


def test_oversized_bodies_are_refused_before_parsing(client):
    big = {"question": "who?", "history": [{"question": "q" * 900}] * 100}
    response = client.post("/ask", json=big)
    assert response.status_code == 413 and "too large" in response.json()["detail"]


def test_static_files_do_not_reach_outside_the_web_folder(client):
    for path in ["/static/../qa/settings.py", "/static/%2e%2e/qa/settings.py", "/static/..%2fpyproject.toml",
                 "/static//etc/passwd"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "pydantic" not in response.text and "root:" not in response.text
