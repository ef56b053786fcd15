"""The embedding model on ONNX Runtime, in fp32 or with dynamic int8 quantisation.

The graph (encoder, mean pooling, L2 normalisation) is exported locally and
cached by ``qa.onnx``. Vectors match the PyTorch path to cosine 1.0000
(fp32) and about 0.99 (int8).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from qa.embedding.base import DEFAULT_BATCH_SIZE
from qa.onnx import Precision, ensure_onnx_model, length_batches, onnx_session


def _max_seq_length(model_path: Path) -> int:
    try:
        config = json.loads((model_path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config.get("max_seq_length") or 256)
    except (OSError, ValueError):
        return 256


class OnnxEmbedder:
    """An ``qa.embedding.base.Embedder``: normalised float32 vectors, batches sorted by length."""

    def __init__(self, model_name: str, model_path: str, precision: Precision = "int8", batch_size: int = DEFAULT_BATCH_SIZE,
                 threads: int = 2, cache_dir: Path | None = None):
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.name = model_name
        self.backend = "onnx-int8" if precision == "int8" else "onnx"
        self.batch_size = batch_size
        self.max_length = _max_seq_length(Path(model_path))
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        # A fast tokenizer sets its padding and truncation on every call, which is reported to fail
        # with "RuntimeError: Already borrowed" when two threads do it at once
        # (huggingface/tokenizers#537; not reproduced here with tokenizers 0.23.3: a guard).
        self.tokenizer_lock = threading.Lock()
        self.path = ensure_onnx_model(model_path, precision, cache_dir)
        self.session = onnx_session(self.path, threads)
        probe = np.asarray(self.tokenizer(["dimension"], return_token_type_ids=False)["input_ids"])
        self.dimension = int(self._run(probe, np.ones_like(probe)).shape[1])

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64)})[0]

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit vectors of ``texts``, in batches of texts of similar length (longest first).

        A batch is padded to its longest text (see ``length_batches``): a handful of
        sentences of mixed lengths (what the reader embeds) costs little more than their tokens.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self.tokenizer_lock:
            encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                     return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        for rows in length_batches(order, [len(e) for e in encoded], self.batch_size):
            width = len(encoded[rows[0]])
            ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, : len(encoded[i])] = encoded[i]
                mask[r, : len(encoded[i])] = 1
            out[rows] = self._run(ids, mask)
        return np.ascontiguousarray(out)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts)
