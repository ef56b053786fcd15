"""Every model is loaded once per process, however many parts of the product use it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from qa import models

SERVER_PROCESS = """
import json, sys
from fastapi.testclient import TestClient
from qa import models
from qa.serving.app import create_app
from qa.settings import Settings

settings = Settings(index_dir=sys.argv[1])
client = TestClient(create_app(settings))
for question in ("who plays Sera?", "who directed Fargo?", "and Leaving Las Vegas?"):
    assert client.post("/ask", json={"question": question}).status_code == 200
client.get("/")
print(json.dumps(models.loads()))
"""


def test_asking_questions_loads_each_model_once(shipped_settings):
    """A server that indexes nothing and answers three questions holds one embedder and one span model."""
    out = subprocess.run([sys.executable, "-c", SERVER_PROCESS, str(shipped_settings.index_dir)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    loads = json.loads(out.stdout.strip().splitlines()[-1])
    assert loads.get("embedder") == 1 and loads.get("reader") == 1, loads
    assert loads.get("spacy", 0) <= 1, loads


@pytest.mark.unit
def test_shared_loads_once_per_key_and_again_for_another_key():
    calls = []

    def load(name):
        calls.append(name)
        return object()

    models.forget()
    try:
        first = models.shared("fake", ("a", 1), lambda: load("a"))
        assert models.shared("fake", ("a", 1), lambda: load("a")) is first
        other = models.shared("fake", ("b", 1), lambda: load("b"))
        assert other is not first and calls == ["a", "b"] and models.loads() == {"fake": 2}
    finally:
        models.forget()
