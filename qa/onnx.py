"""Local ONNX exports of the project's models, in fp32 or with dynamic int8 quantisation.

Two kinds of graph, both exported from installed weights (nothing is
downloaded) with ``torch.onnx.export``:

* ``embedding``: the sentence-transformers BERT encoder with mean pooling and
  L2 normalisation (``qa.embedding.onnx_embedder``);
* ``question-answering``: an ``AutoModelForQuestionAnswering`` checkpoint such
  as the shipped span model, giving start and end logits (``qa.reading.transformer``).

Attention and layer norms are fused by ONNX Runtime's transformer optimiser,
and for ``int8`` the MatMul weights are quantised per channel with
``quantize_dynamic``. The result is cached
(``~/.cache/film-review-qa/onnx/<key>/`` unless configured), keyed by the
model's files and the library versions, and built once, on first use;
concurrent first uses each write a temporary file and rename it, so a half
written model is never read.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
Task = Literal["embedding", "question-answering"]
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


def _embedding_graph(model_path: Path):
    """The encoder + mean pooling + normalisation: (module, input names, output names)."""
    import torch
    from transformers import AutoModel

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

    return Encoder(model), ["input_ids", "attention_mask"], {"embedding": {0: "batch"}}


def _question_answering_graph(model_path: Path):
    """Start and end logits of an extractive-QA checkpoint: (module, input names, output names)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(model_path, attn_implementation="eager",
                                                          dtype=torch.float32).eval()

    class Reader(torch.nn.Module):
        def __init__(self, qa):
            super().__init__()
            self.qa = qa

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.qa(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.start_logits, out.end_logits

    logits = {0: "batch", 1: "tokens"}
    return Reader(model), ["input_ids", "attention_mask", "token_type_ids"], {"start_logits": logits,
                                                                               "end_logits": logits}


def _export_fp32(model_path: Path, task: Task, out: Path) -> None:
    """The task's graph as one ONNX file with dynamic batch and length, then fused."""
    import warnings

    import torch
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_path)
    module, inputs, outputs = (_embedding_graph if task == "embedding" else _question_answering_graph)(model_path)
    ids = torch.ones(2, 16, dtype=torch.long)
    raw = out.with_suffix(".raw.onnx")
    axes = {name: {0: "batch", 1: "tokens"} for name in inputs} | outputs
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(torch.ones_like(ids) for _ in inputs), str(raw),
                          input_names=inputs, output_names=list(outputs), dynamic_axes=axes,
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


def ensure_onnx_model(model_path: str | Path, precision: Precision, cache_dir: Path | None = None,
                      task: Task = "embedding") -> Path:
    """The cached ONNX file for this model, task and precision, exported (and quantised) first if missing."""
    model_path = Path(model_path)
    folder = (cache_dir or default_cache_dir()) / f"{model_path.name}-{_model_key(model_path)}"
    prefix = "model" if task == "embedding" else task
    target = folder / f"{prefix}-{precision}.onnx"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as tmp:
        fp32 = folder / f"{prefix}-fp32.onnx"
        if not fp32.exists():
            tmp_fp32 = Path(tmp) / fp32.name
            _export_fp32(model_path, task, tmp_fp32)
            os.replace(tmp_fp32, fp32)
        if precision == "int8":
            tmp_int8 = Path(tmp) / target.name
            _quantize(fp32, tmp_int8)
            os.replace(tmp_int8, target)
    log.info("exported %s (%s %s) to %s in %.1fs", model_path.name, task, precision, target, time.perf_counter() - started)
    return target




def onnx_session(path: Path, threads: int = 2):
    """An ONNX Runtime CPU session tuned to share a process with PyTorch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between runs: spinning ONNX Runtime threads slow down PyTorch (the reader)
    # in the same process; measured ~390 ms instead of ~10 ms per torch query embedding.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


SHRINK = 0.75


def length_batches(order: list[int], lengths: list[int], size: int) -> list[list[int]]:
    """``order`` (indices, longest first) cut into batches of at most ``size`` that pad little.

    A batch runs padded to its longest input, so it closes when it is full or when the
    next input is shorter than ``SHRINK`` times its first. Measured on the span model
    reading five passages of mixed length: one padded batch 47 ms, one input at a time 30 ms.
    """
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < size and lengths[i] >= SHRINK * lengths[batches[-1][0]]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
