"""The embedding model on PyTorch, through sentence-transformers (``QA_EMBEDDING_BACKEND=torch``)."""
from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from qa.embedding.base import DEFAULT_BATCH_SIZE, resolve_model_path


class TorchEmbedder:
    """Turns texts into normalised vectors with a sentence-transformers model."""

    backend = "torch"

    def __init__(self, model_name: str, batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
        self.name = model_name
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_model_path(model_name), device="cpu")
        # One encode at a time: fast tokenizers are reported to fail when two threads call them
        # at once ("Already borrowed", huggingface/tokenizers#537), and PyTorch uses every core anyway.
        self.lock = threading.Lock()
        self.dimension = int(self.model.get_embedding_dimension()
                             if hasattr(self.model, "get_embedding_dimension")
                             else self.model.get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32, unit length. Batches are sorted by length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self.lock:
            vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts)
