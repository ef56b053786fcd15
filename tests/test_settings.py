"""Settings: environment variables with the QA_ prefix, CLI overrides, and the README's table."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from qa.settings import Settings

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[1] / "README.md"


def test_environment_variables_with_the_qa_prefix(monkeypatch):
    monkeypatch.setenv("QA_TOP_K", "7")
    monkeypatch.setenv("QA_INDEX_DIR", "/data/idx")
    settings = Settings()
    assert settings.top_k == 7 and settings.index_dir == Path("/data/idx")
    assert Settings(top_k=3).top_k == 3  # flags (init arguments) beat the environment


def test_bad_values_name_the_setting(monkeypatch):
    monkeypatch.setenv("QA_TOP_K", "500")
    with pytest.raises(ValidationError, match="top_k"):
        Settings()


def test_the_readme_documents_every_setting():
    text = README.read_text(encoding="utf-8")
    missing = [f"QA_{name.upper()}" for name in Settings.model_fields if f"QA_{name.upper()}" not in text]
    assert missing == [], f"README.md does not document {missing}"
