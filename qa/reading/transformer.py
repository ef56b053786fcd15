"""A reader backed by any local Hugging Face extractive-QA checkpoint.

``TransformerReader(path)`` loads e.g. a SQuAD 2.0 model that the user has
already downloaded; nothing is ever fetched from the network.

Scoring follows SQuAD 2.0: the "null" (no-answer) score of a window is
``start_logit[0] + end_logit[0]``, i.e. the logits at the first token, which is
``[CLS]`` for BERT, ``<s>`` for RoBERTa and MiniLM. Models that do not put a
CLS-style token first are still handled, generically, with index 0 (whatever
token sits there stands in for "no answer"); the tokenizer is forced to pad
on the right so that index 0 is always a real token.
"""
from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence, get_args

import torch

from qa.onnx import length_batches
from qa.schema import Answer, Passage

Backend = Literal["torch", "onnx", "onnx-int8"]
Normalize = Literal["window", "question"]
NULL_INDEX = 0  # position of the token whose logits give the no-answer score


@dataclass(frozen=True)
class _Span:
    """A candidate answer: character offsets into one passage and a probability."""

    passage_index: int
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class _WindowScores:
    """One window's span logits (tokens x tokens), which of them are valid, the null logit, and the
    log-sum-exp over the null answer and the valid spans."""

    valid: torch.Tensor
    span_logits: torch.Tensor
    null_logit: float
    log_z: torch.Tensor


def _logsumexp(values: list[torch.Tensor]) -> torch.Tensor | None:
    return torch.logsumexp(torch.stack(values), dim=0) if values else None


class TransformerReader:
    """Extractive QA with a local ``AutoModelForQuestionAnswering`` checkpoint.

    Long passages are cut into overlapping windows of ``max_length`` tokens
    (``stride`` tokens of overlap); all windows of all passages run through the
    model in batches of ``batch_size``. A span's score is a softmax probability,
    so it lies in [0, 1]: with ``normalize="window"`` (what SQuAD 2.0 readers do)
    against the null answer and every other valid span of its own window; with
    ``normalize="question"`` against the null answers and spans of every window
    read for the question, so that a passage where the model sees no strong
    answer cannot hand its best guess a high score ("Ben" for "who plays Sera?"
    from a paragraph about Ben, beside "Elisabeth Shue as Sera" in another).

    A ``reader.json`` beside the weights (written by
    ``training/train_reader.py`` and ``training/calibrate_reader.py``) may give
    the window size and stride the model was trained with, a ``calibration`` (``a``, ``b``, ``c``: the
    score becomes ``sigmoid(a * ln p - b * ln(1 - p) + c)``, the chance that the span is right,
    fitted on held-out questions; see ``calibrate``), its ``no_answer_threshold`` on that
    scale, the ``fuller_form_share`` the pipeline merges answers with (chosen on the same scale,
    see ``qa.answering.pipeline.merge_answers``) and ``normalize``; arguments given here win over it.

    ``backend`` runs the model with PyTorch (``torch``) or with ONNX Runtime
    (``onnx``: fp32; ``onnx-int8``: weights quantised to int8), from a graph
    exported locally once and cached by ``qa.onnx``.

    A span is proposed only when its logit beats the window's null answer; ``null_margin``
    (``reader.json``, chosen with the threshold by ``training/calibrate_reader.py``) lets spans up
    to that much below it through too, and the calibrated no-answer threshold then decides
    (``math.inf``: every window's best spans, whatever the null answer says; used to study the
    no-answer threshold).

    ``passage_prior`` (``reader.json``; used with ``normalize="question"``) weighs each window by
    its passage's retrieval score: every logit of the window gets ``passage_prior * score`` added,
    so that of two equally likely spans the one in the passage retrieval ranked higher wins
    ("what character does peter lorre play": Ugarte in the Casablanca paragraph, not the
    character another actor plays in a paragraph retrieval put fifth). Passages of equal score
    (reading one review) are unaffected.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        max_length: int | None = None,
        stride: int | None = None,
        batch_size: int = 16,
        max_answer_tokens: int = 30,
        top_n: int = 3,
        device: str = "cpu",
        calibrated: bool = True,
        backend: Backend = "torch",
        onnx_cache_dir: Path | None = None,
        null_margin: float | None = None,
        normalize: Normalize | None = None,
        passage_prior: float | None = None,
    ) -> None:
        if backend not in get_args(Backend):
            raise ValueError(f"unknown reader backend {backend!r}: expected one of {', '.join(get_args(Backend))}")
        self.model_path = str(model_path)
        config = reader_config(Path(model_path))
        self.max_length = max_length or int(config.get("max_length", 384))
        self.stride = stride or int(config.get("stride", 128))
        self.threshold = _optional_float(config, "no_answer_threshold")
        self.fuller_form_share = _optional_float(config, "fuller_form_share")
        self.calibration: tuple[float, float, float] | None = (
            calibration_of(config) if calibrated else None)
        self.batch_size = batch_size
        self.max_answer_tokens = max_answer_tokens
        self.top_n = top_n
        self.device = device
        self.backend = backend
        self.onnx_cache_dir = onnx_cache_dir
        self.null_margin = float(config.get("null_margin", 0.0) if null_margin is None else null_margin)
        self.normalize = normalize or str(config.get("normalize", "window"))
        if self.normalize not in get_args(Normalize):
            raise ValueError(f"normalize must be one of {', '.join(get_args(Normalize))}, not {self.normalize!r}")
        self.passage_prior = float(config.get("passage_prior", 0.0) if passage_prior is None else passage_prior)
        self._tokenizer: Any = None
        self._model: Any = None  # a torch module, or an ONNX Runtime session
        # Loading happens once, and the tokenizer is used by one thread at a time: a fast tokenizer
        # sets its padding and truncation on every call, which is reported to fail with "Already
        # borrowed" when two threads do it at once (huggingface/tokenizers#537; not reproduced
        # here with tokenizers 0.23.3 and 8 threads, so this is a guard).
        self._lock = threading.Lock()

    def _load(self) -> None:
        """Load tokenizer and model on first use (once per instance)."""
        if self._model is not None:
            return
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        tokenizer.padding_side = "right"  # keep NULL_INDEX on a real token
        if self.backend == "torch":
            from transformers import AutoModelForQuestionAnswering

            model = AutoModelForQuestionAnswering.from_pretrained(self.model_path, local_files_only=True)
            self._model = model.to(self.device).float().eval()
        else:
            from qa.onnx import ensure_onnx_model, onnx_session

            precision = "int8" if self.backend == "onnx-int8" else "fp32"
            self._model = onnx_session(ensure_onnx_model(self.model_path, precision, self.onnx_cache_dir,
                                                         task="question-answering"))
        self._tokenizer = tokenizer

    def read(self, question: str, passages: Sequence[Passage]) -> list[Answer]:
        """Up to ``top_n`` answers per passage; an empty list when none is likely."""
        if not passages:
            return []
        with self._lock:
            self._load()
            question = self._fit_question(question)
            encoding = self._tokenizer(
                [question] * len(passages),
                [p.text for p in passages],
                truncation="only_second",
                max_length=self.max_length,
                stride=self.stride,
                return_overflowing_tokens=True,
                return_offsets_mapping=True,
                padding=True,
                return_tensors="pt",
            )
        start_logits, end_logits = self._run_model(encoding)
        windows = [(passage_index, self._window_scores(start_logits[w], end_logits[w], encoding.sequence_ids(w)),
                    encoding["offset_mapping"][w].tolist())
                   for w, passage_index in enumerate(encoding["overflow_to_sample_mapping"].tolist())]
        shared = None
        prior = [0.0] * len(passages)
        if self.normalize == "question":
            prior = [self.passage_prior * p.score for p in passages]
            shared = _logsumexp([scores.log_z + prior[i] for i, scores, _ in windows if scores is not None])
        spans: list[_Span] = []
        for passage_index, scores, offsets in windows:
            if scores is not None:
                spans += self._decode_window(passage_index, passages[passage_index].text, scores, offsets, shared,
                                             prior[passage_index])
        return self._best_per_passage(spans, passages)

    def _fit_question(self, question: str) -> str:
        """The question cut to at most ``(max_length - stride) // 2`` tokens.

        Each window holds the question and a slice of the passage; a question so long that
        the slice would be no longer than the stride leaves no room to slide (the tokenizer
        refuses it), so very long questions keep their beginning only.
        """
        limit = max(1, (self.max_length - self.stride) // 2)
        offsets = self._tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return question if len(offsets) <= limit else question[: offsets[limit - 1][1]]

    def _run_model(self, encoding: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Start and end logits, shape (windows, tokens), computed in batches.

        Windows of similar length are batched together (``length_batches``) and each batch
        is cut to its longest window, so a short passage read beside a long one is not
        padded to the long one's length.
        Logits past a window's end are ``-inf`` (they are padding, never context).
        """
        inputs = {name: encoding[name] for name in self._tokenizer.model_input_names if name in encoding}
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask", torch.ones_like(ids))
        lengths = mask.sum(dim=1)
        starts = torch.full(ids.shape, float("-inf"))
        ends = torch.full(ids.shape, float("-inf"))
        order = torch.argsort(lengths, descending=True, stable=True).tolist()
        for batch_rows in length_batches(order, lengths.tolist(), self.batch_size):
            rows = torch.tensor(batch_rows)
            width = int(lengths[rows].max())
            batch = {name: value[rows, :width] for name, value in inputs.items()}
            start, end = self._run_onnx(batch) if self.backend != "torch" else self._run_torch(batch)
            starts[rows, :width] = start
            ends[rows, :width] = end
        return starts, ends

    def _run_torch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            output = self._model(**{k: v.to(self.device) for k, v in batch.items()})
        return output.start_logits.float().cpu(), output.end_logits.float().cpu()

    def _run_onnx(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return onnx_logits(self._model, batch)

    def _window_scores(self, start_logits: torch.Tensor, end_logits: torch.Tensor,
                       sequence_ids: list[int | None]) -> _WindowScores | None:
        """The logits of every valid span of a window, its null logit and their log-sum-exp; None
        when the window has no valid span.

        Valid spans start and end on context tokens, with start <= end and at most
        ``max_answer_tokens`` tokens.
        """
        context = torch.tensor([s == 1 for s in sequence_ids])
        i = torch.arange(len(sequence_ids))
        length = i[None, :] - i[:, None]  # end - start, in tokens
        valid = context[:, None] & context[None, :] & (length >= 0) & (length < self.max_answer_tokens)
        if not valid.any():
            return None
        span_logits = start_logits[:, None] + end_logits[None, :]
        null_logit = start_logits[NULL_INDEX] + end_logits[NULL_INDEX]
        log_z = torch.logsumexp(torch.cat([null_logit[None], span_logits[valid]]), dim=0)
        return _WindowScores(valid, span_logits, float(null_logit), log_z)

    def _decode_window(
        self,
        passage_index: int,
        text: str,
        scores: _WindowScores,
        offsets: list[tuple[int, int]],
        shared_log_z: torch.Tensor | None = None,
        shift: float = 0.0,
    ) -> list[_Span]:
        """The window's best spans that beat its null answer, with probabilities.

        The softmax runs over the null answer and all valid spans of the window, or, given
        ``shared_log_z``, of every window read for the question; only spans scoring above the
        window's null answer are kept. ``shift`` (the window's passage prior) is added to its logits.
        """
        log_z = scores.log_z if shared_log_z is None else shared_log_z
        n = scores.valid.shape[0]
        candidates = torch.where(scores.valid, scores.span_logits, torch.tensor(float("-inf")))
        top = torch.topk(candidates.flatten(), k=min(self.top_n, int(scores.valid.sum())))
        spans = []
        for logit, flat in zip(top.values.tolist(), top.indices.tolist()):
            if logit <= scores.null_logit - self.null_margin:
                break
            start_token, end_token = divmod(flat, n)
            char_span = _strip(text, offsets[start_token][0], offsets[end_token][1])
            if char_span is not None:
                score = float(torch.exp(torch.tensor(logit + shift) - log_z))
                spans.append(_Span(passage_index, *char_span, score))
        return spans

    def _best_per_passage(self, spans: list[_Span], passages: Sequence[Passage]) -> list[Answer]:
        """Merge windows (max score per distinct span) and keep ``top_n`` per passage."""
        best: dict[tuple[int, int, int], float] = {}
        for s in spans:
            key = (s.passage_index, s.start, s.end)
            best[key] = max(best.get(key, 0.0), s.score)
        answers: list[Answer] = []
        for index, passage in enumerate(passages):
            mine = sorted(((score, key) for key, score in best.items() if key[0] == index), reverse=True)
            for score, (_, start, end) in mine[: self.top_n]:
                answers.append(Answer.in_passage(passage, start, end, self._calibrate(min(max(score, 0.0), 1.0))))
        return answers

    def _calibrate(self, p: float) -> float:
        return p if self.calibration is None else calibrate(p, *self.calibration)


def onnx_logits(session: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and end logits of one batch from an exported question-answering graph."""
    ids = batch["input_ids"]
    feed = {"input_ids": ids, "attention_mask": batch.get("attention_mask", torch.ones_like(ids)),
            "token_type_ids": batch.get("token_type_ids", torch.zeros_like(ids))}
    start, end = session.run(None, {k: v.numpy().astype("int64") for k, v in feed.items()})
    return torch.from_numpy(start), torch.from_numpy(end)


def calibrate(p: float, a: float, b: float, c: float) -> float:
    """Beta calibration of a probability (Kull, Silva Filho and Flach, 2017):
    ``sigmoid(a * ln p - b * ln(1 - p) + c)``; 0 stays 0 (no span).

    With ``a, b >= 0`` it rises with ``p``, so answers keep their order. Platt
    scaling, ``sigmoid(a * logit(p) + c)``, is the case ``a == b``."""
    if p <= 0.0:
        return 0.0
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return 1.0 / (1.0 + math.exp(-(a * math.log(p) - b * math.log(1.0 - p) + c)))


def calibration_of(config: dict[str, Any]) -> tuple[float, float, float] | None:
    """``(a, b, c)`` of ``calibrate`` from a ``reader.json``; None when it has no calibration.

    Older files hold Platt scaling as ``{"a", "b"}`` (``sigmoid(a * logit(p) + b)``): that is
    ``(a, a, b)``."""
    calibration = config.get("calibration")
    if not calibration:
        return None
    if "c" not in calibration:
        return float(calibration["a"]), float(calibration["a"]), float(calibration["b"])
    return float(calibration["a"]), float(calibration["b"]), float(calibration["c"])


def _optional_float(config: dict[str, Any], key: str) -> float | None:
    value = config.get(key)
    return float(value) if value is not None else None


def reader_config(folder: Path) -> dict[str, Any]:
    """The folder's ``reader.json`` settings, or {} when it has none."""
    path = folder / "reader.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return config


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``(start, end)`` narrowed past surrounding whitespace; None if nothing is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
