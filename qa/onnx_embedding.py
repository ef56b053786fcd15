"""The embedding model on ONNX Runtime, in fp32 or with dynamic int8 quantisation.

The ONNX graph is exported locally from the installed sentence-transformers
model (nothing is downloaded): the BERT encoder with mean pooling and L2
normalisation, exported with ``torch.onnx.export``, its attention and layer
norms fused by ONNX Runtime's transformer optimiser, and for ``int8`` its
MatMul weights quantised per channel with ``quantize_dynamic``. The result is
cached (``~/.cache/film-review-qa/onnx/<key>/`` unless configured), keyed by
the model's files and the library versions, and built once, on first use;
concurrent first uses each write a temporary file and rename it, so a half
written model is never read.

Vectors match the PyTorch path to cosine 1.0000 (fp32) and about 0.99 (int8).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
EXPORT_VERSION = 1  # bump when the export recipe changes: old cache entries are then ignored


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "film-review-qa" / "onnx"


def _model_key(model_path: Path) -> str:
    """Changes when the model's files or the exporting libraries change."""
    import onnxruntime
    import torch
    import transformers

    h = hashlib.sha256()
    for f in sorted(model_path.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(model_path)}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(f"{torch.__version__}|{transformers.__version__}|{onnxruntime.__version__}|{EXPORT_VERSION}".encode())
    return h.hexdigest()[:16]


def _max_seq_length(model_path: Path) -> int:
    try:
        config = json.loads((model_path / "sentence_bert_config.json").read_text(encoding="utf-8"))
        return int(config.get("max_seq_length") or 256)
    except (OSError, ValueError):
        return 256


def _export_fp32(model_path: Path, out: Path) -> None:
    """The encoder + mean pooling + normalisation as one ONNX graph with dynamic batch and length."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    ids = torch.ones(2, 16, dtype=torch.long)
    raw = out.with_suffix(".raw.onnx")
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Encoder(model), (ids, torch.ones_like(ids)), str(raw),
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                     hidden_size=config.hidden_size, opt_level=1)
    fused.save_model_to_file(str(out))
    raw.unlink(missing_ok=True)


def _quantize(src: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def ensure_onnx_model(model_path: str | Path, precision: Precision, cache_dir: Path | None = None) -> Path:
    """The cached ONNX file for this model and precision, exported (and quantised) first if missing."""
    model_path = Path(model_path)
    folder = (cache_dir or default_cache_dir()) / f"{model_path.name}-{_model_key(model_path)}"
    target = folder / f"model-{precision}.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
        fp32 = folder / "model-fp32.onnx"
        if not fp32.exists():
            tmp_fp32 = Path(tmp) / "model-fp32.onnx"
            _export_fp32(model_path, tmp_fp32)
            os.replace(tmp_fp32, fp32)
        if precision == "int8":
            tmp_int8 = Path(tmp) / "model-int8.onnx"
            _quantize(fp32, tmp_int8)
            os.replace(tmp_int8, target)
    log.info("exported %s (%s) to %s in %.1fs", model_path.name, precision, target, time.perf_counter() - started)
    return target


class OnnxEmbedder:
    """Same interface as ``qa.embedding.Embedder``: normalised float32 vectors, batches sorted by length."""

    def __init__(self, model_name: str, model_path: str, precision: Precision = "int8", batch_size: int = 64,
                 threads: int = 2, cache_dir: Path | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.name = model_name
        self.backend = "onnx-int8" if precision == "int8" else "onnx"
        self.batch_size = batch_size
        self.max_length = _max_seq_length(Path(model_path))
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.path = ensure_onnx_model(model_path, precision, cache_dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: spinning ONNX Runtime threads slow down PyTorch (the reader)
        # in the same process; measured ~390 ms instead of ~10 ms per torch query embedding.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.dimension = int(self._run(["dimension"]).shape[1])

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="np", return_token_type_ids=False)
        return self.session.run(None, {"input_ids": batch["input_ids"].astype(np.int64),
                                       "attention_mask": batch["attention_mask"].astype(np.int64)})[0]

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: less padding per batch
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            rows = order[start:start + self.batch_size]
            out[rows] = self._run([texts[i] for i in rows])
        return np.ascontiguousarray(out)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts)
