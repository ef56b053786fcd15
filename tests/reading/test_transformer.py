"""TransformerReader on a tiny, hand-wired BERT built in the test (no download).

The model is random except for a few weights set so its behaviour is known:
the transformer layers are reduced to LayerNorms (attention and feed-forward
output projections zeroed), every embedding is orthogonal to one direction
``v`` except the "marker" token's, and ``qa_outputs`` reads only along ``v``.
So start and end logits are ~0 on every token but the marker, where they are
large (~11), and [CLS] (~1.1): the model answers the marker word and, in a
window without it, nothing. Making [CLS] the fully aligned token (and the
marker only partly) instead makes the null answer beat the marker.
"""
from __future__ import annotations

import json

import math
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast  # noqa: E402

from qa.reading.transformer import TransformerReader  # noqa: E402
from qa.schema import Passage  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "the film is a long slow story about love and loss in winter what who zebra".split()
VOCAB = SPECIAL + WORDS + list(".,?")
MARKER = "zebra"
QUESTION = "who is in the film?"
HIDDEN = 32


def _unit(*pairs: tuple[int, float]) -> torch.Tensor:
    """A unit vector of HIDDEN dims with the given components (they sum to 0)."""
    v = torch.zeros(HIDDEN)
    for index, value in pairs:
        v[index] = value
    return v / v.norm()


def build_checkpoint(path: Path, null_dominates: bool = False) -> Path:
    """Save a tokenizer and a hand-wired BertForQuestionAnswering to ``path``."""
    path.mkdir(parents=True)
    vocab_file = path / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n")
    # transformers 5.x: BertTokenizerFast is BertTokenizer and silently ignores
    # ``vocab_file=``; the vocabulary must be passed as ``vocab=``.
    tokenizer = BertTokenizerFast(vocab=str(vocab_file))
    assert len(tokenizer) == len(VOCAB)

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    model = BertForQuestionAnswering(config)
    v = _unit((0, 1.0), (1, -1.0))  # mean zero, so LayerNorm's centring keeps x.v
    w = _unit((2, 1.0), (3, -1.0))  # orthogonal to v, invisible to qa_outputs
    with torch.no_grad():
        for layer in model.bert.encoder.layer:  # each layer becomes LayerNorm(x)
            for dense in (layer.attention.output.dense, layer.output.dense):
                dense.weight.zero_()
                dense.bias.zero_()
        emb = model.bert.embeddings
        for table in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings):
            table.weight -= (table.weight @ v)[:, None] * v[None, :]
        marker_id = tokenizer.convert_tokens_to_ids(MARKER)
        if null_dominates:
            # [CLS] fully aligned; the marker only half (its span still beats other spans).
            emb.word_embeddings.weight[tokenizer.cls_token_id] = 10 * v
            emb.word_embeddings.weight[marker_id] = 10 * (v + w)
        else:
            # The marker fully aligned; [CLS] a little, so the null answer beats
            # the (all ~0) spans of a window without the marker.
            emb.word_embeddings.weight[marker_id] = 10 * v
            emb.word_embeddings.weight[tokenizer.cls_token_id] = 10 * (0.1 * v + w)
        model.qa_outputs.weight[:] = 2 * v
        model.qa_outputs.bias.zero_()
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("hf") / "marker")


@pytest.fixture(scope="module")
def null_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("hf") / "null", null_dominates=True)


def long_text(n_words: int = 300, marker_at: int | None = 290) -> str:
    """Filler prose of ``n_words`` words, with "Zebra," at word ``marker_at``."""
    filler = "the film is a long slow story about love and loss in winter .".split()
    words = [filler[i % len(filler)] for i in range(n_words)]
    if marker_at is not None:
        words[marker_at] = "Zebra,"
    return "  ".join(words[:5]) + " " + " ".join(words[5:]) + "\n"


def passage(pid: str, text: str, document_start: int = 1000) -> Passage:
    return Passage(id=pid, document_id="doc-" + pid, text=text, document_start=document_start, film="Fargo")


def assert_exact_offsets(answers, passages) -> None:
    by_id = {p.id: p for p in passages}
    for a in answers:
        p = by_id[a.passage_id]
        assert p.text[a.start : a.end] == a.text
        assert a.text == a.text.strip() and a.text
        assert a.document_start == p.document_start + a.start
        assert a.document_end == p.document_start + a.end
        assert a.document_id == p.document_id
        assert 0.0 <= a.score <= 1.0


def test_windowing_finds_span_in_a_late_window(model_path: Path) -> None:
    reader = TransformerReader(model_path, max_length=64, stride=16, batch_size=4)
    assert reader._model is None  # lazy
    p = passage("p1", long_text(300, marker_at=280))
    answers = reader.read(QUESTION, [p])

    windows = reader._tokenizer(
        QUESTION, p.text, truncation="only_second", max_length=64, stride=16,
        return_overflowing_tokens=True, return_offsets_mapping=True,
    )
    assert len(windows["input_ids"]) >= 5
    marker_id = reader._tokenizer.convert_tokens_to_ids(MARKER)
    marker_windows = [i for i, ids in enumerate(windows["input_ids"]) if marker_id in ids]
    assert min(marker_windows) >= 4  # only the last windows see it ...
    assert len(marker_windows) >= 2  # ... and it lies in the overlap of two of them

    assert_exact_offsets(answers, [p])
    assert answers[0].text == "Zebra"
    # Found by both windows, each span comes back once (max over windows).
    assert len({(a.start, a.end) for a in answers}) == len(answers)

    model = reader._model
    reader.read(QUESTION, [p])
    assert reader._model is model  # loaded once per instance


def test_marker_answer_has_exact_passage_and_document_offsets(model_path: Path) -> None:
    reader = TransformerReader(model_path, max_length=64, stride=16)
    text = long_text()
    p = passage("p1", text, document_start=1234)
    best = max(reader.read(QUESTION, [p]), key=lambda a: a.score)
    start = text.index("Zebra")
    assert (best.text, best.start, best.end) == ("Zebra", start, start + 5)
    assert (best.document_start, best.document_end) == (1234 + start, 1234 + start + 5)
    assert best.passage_id == "p1" and best.film == "Fargo"
    assert best.score > 0.99  # span logit 2x larger than any other span's


def test_no_answer_when_null_score_dominates(model_path: Path, null_model_path: Path) -> None:
    with_marker = passage("p1", long_text(80, marker_at=40))
    # Marker present but the [CLS] (null) score beats its span: nothing returned.
    reader = TransformerReader(null_model_path, max_length=64, stride=16)
    assert reader.read(QUESTION, [with_marker]) == []
    # The same passage gives the marker with the ordinary model ...
    assert [a.text for a in TransformerReader(model_path).read(QUESTION, [with_marker])][:1] == ["Zebra"]
    # ... and without the marker every span (~0) loses to the null answer (~2.3).
    no_marker = passage("p2", long_text(200, marker_at=None))
    assert TransformerReader(model_path, max_length=64, stride=16).read(QUESTION, [no_marker]) == []


def test_null_margin_lets_spans_below_the_null_answer_through(null_model_path: Path) -> None:
    with_marker = passage("p1", long_text(80, marker_at=40))
    # The null answer beats the marker's span by a wide margin (between 5 and 10 logits): a margin
    # of 1 lets nothing through, an unlimited one the window's best span, with its low probability.
    assert TransformerReader(null_model_path, max_length=64, stride=16, null_margin=1.0).read(
        QUESTION, [with_marker]) == []
    answers = TransformerReader(null_model_path, max_length=64, stride=16, null_margin=float("inf")).read(
        QUESTION, [with_marker])
    best = max(answers, key=lambda a: a.score)
    assert best.text == "Zebra" and best.score < 0.5


def test_null_margin_is_read_from_reader_json_and_an_argument_wins(null_model_path: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "with-margin"
    shutil.copytree(null_model_path, folder)
    (folder / "reader.json").write_text(json.dumps({"null_margin": float("inf")}))
    with_marker = passage("p1", long_text(80, marker_at=40))
    assert TransformerReader(folder).null_margin == float("inf")
    assert [a.text for a in TransformerReader(folder, max_length=64, stride=16).read(QUESTION, [with_marker])][:1] == [
        "Zebra"]
    assert TransformerReader(folder, max_length=64, stride=16, null_margin=0.0).read(QUESTION, [with_marker]) == []


def test_batching_gives_same_answers_as_one_by_one(model_path: Path) -> None:
    passages = [
        passage("a", long_text(300, marker_at=290)),
        passage("b", long_text(30, marker_at=3), document_start=0),
        passage("c", long_text(120, marker_at=None)),
        passage("d", long_text(150, marker_at=75), document_start=50),
        passage("e", "Zebra"),
    ]
    batched = TransformerReader(model_path, max_length=64, stride=16, batch_size=3)
    single = TransformerReader(model_path, max_length=64, stride=16, batch_size=1)
    together = batched.read(QUESTION, passages)
    apart = [a for p in passages for a in single.read(QUESTION, [p])]

    key = lambda a: (a.passage_id, a.start, a.end, a.text)  # noqa: E731
    assert sorted(map(key, together)) == sorted(map(key, apart))
    scores = {key(a): a.score for a in apart}
    for a in together:
        assert a.score == pytest.approx(scores[key(a)], abs=1e-5)
    assert {a.passage_id for a in together if a.text == "Zebra"} == {"a", "b", "d", "e"}
    assert_exact_offsets(together, passages)


def test_threads_reading_at_once_get_what_one_thread_gets(model_path: Path) -> None:
    """The server reads several questions at once with one reader (and one tokenizer)."""
    from concurrent.futures import ThreadPoolExecutor

    reader = TransformerReader(model_path, max_length=64, stride=16, batch_size=2)
    jobs = [(QUESTION + "?" * (i % 3), [passage(str(i), long_text(40 + 10 * i, marker_at=i))]) for i in range(12)]
    alone = [reader.read(q, ps) for q, ps in jobs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda job: reader.read(*job), jobs * 2))
    key = lambda answers: [(a.passage_id, a.start, a.end, round(a.score, 5)) for a in answers]  # noqa: E731
    assert [key(a) for a in together] == [key(a) for a in alone * 2]


def test_scores_in_unit_interval_and_top_n(model_path: Path) -> None:
    reader = TransformerReader(model_path, max_length=64, stride=16, top_n=2)
    passages = [passage(str(i), long_text(60 + 40 * i, marker_at=10 + 30 * i)) for i in range(4)]
    answers = reader.read(QUESTION, passages)
    assert answers
    for p in passages:
        mine = [a for a in answers if a.passage_id == p.id]
        assert 1 <= len(mine) <= 2
    assert all(0.0 <= a.score <= 1.0 for a in answers)
    assert_exact_offsets(answers, passages)


def test_a_question_longer_than_the_window_allows_is_cut_not_refused(model_path: Path) -> None:
    reader = TransformerReader(model_path, max_length=64, stride=16)
    passage = Passage(id="d#0", document_id="d", text="word " * 100, document_start=0)
    answers = reader.read("who " * 240, [passage])  # 240 tokens: the tokenizer alone would panic
    assert all(passage.text[a.start : a.end] == a.text for a in answers)
    assert reader._fit_question("who " * 240).count("who") == (64 - 16) // 2


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_backends_answer_like_pytorch(model_path: Path, tmp_path: Path, backend: str) -> None:
    passages = [
        passage("a", long_text(300, marker_at=290)),
        passage("c", long_text(120, marker_at=None)),
        passage("e", "Zebra"),
    ]
    torch_reader = TransformerReader(model_path, max_length=64, stride=16)
    onnx_reader = TransformerReader(model_path, max_length=64, stride=16, backend=backend, onnx_cache_dir=tmp_path)

    def best(answers):  # passage -> its best answer (the other spans of the tiny model tie at ~0)
        return {p.id: max((a for a in answers if a.passage_id == p.id), key=lambda a: a.score)
                for p in passages if any(a.passage_id == p.id for a in answers)}

    expected, got = best(torch_reader.read(QUESTION, passages)), best(onnx_reader.read(QUESTION, passages))
    assert {pid: a.text for pid, a in got.items()} == {"a": "Zebra", "e": "Zebra"}  # nothing without the marker
    assert_exact_offsets(got.values(), passages)
    for pid, a in got.items():
        assert (a.start, a.end) == (expected[pid].start, expected[pid].end)
        assert a.score == pytest.approx(expected[pid].score, abs=1e-4 if backend == "onnx" else 0.05)
    precision = "int8" if backend == "onnx-int8" else "fp32"
    assert list(tmp_path.rglob(f"question-answering-{precision}.onnx"))  # exported into the configured cache


def test_an_unknown_backend_is_refused_by_name(model_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown reader backend 'tf'"):
        TransformerReader(model_path, backend="tf")  # type: ignore[arg-type]


def test_question_normalisation_weighs_a_span_against_every_passage_read(model_path: Path) -> None:
    # Two passages with an equally strong answer and one without: per window each answer is
    # near-certain; normalised over the question they share the probability mass.
    twins = [passage("p1", long_text(40, marker_at=20)), passage("p2", long_text(40, marker_at=10)),
             passage("p3", long_text(40, marker_at=None))]
    alone = TransformerReader(model_path, normalize="window").read(QUESTION, twins)
    shared = TransformerReader(model_path, normalize="question").read(QUESTION, twins)
    assert {a.passage_id for a in alone if a.text == "Zebra"} == {a.passage_id for a in shared} - {"p3"} == {"p1", "p2"}
    assert all(a.score > 0.99 for a in alone if a.text == "Zebra")
    best = sorted((a.score for a in shared if a.text == "Zebra"), reverse=True)
    assert best == pytest.approx([0.5, 0.5], abs=0.01)
    # With one passage there is nothing to share: the same score either way.
    one = [TransformerReader(model_path, normalize=n).read(QUESTION, twins[:1])[0].score
           for n in ("window", "question")]
    assert one[0] == pytest.approx(one[1])


def test_an_unknown_normalisation_is_refused_by_name(model_path: Path) -> None:
    with pytest.raises(ValueError, match="normalize"):
        TransformerReader(model_path, normalize="passage")


def test_the_passage_prior_favours_the_passage_retrieval_ranked_higher(model_path: Path) -> None:
    # The same answer in two passages: shared evenly without a prior, and with one the passage
    # retrieved with the higher score gets e^(prior * difference) times the other's share.
    from dataclasses import replace

    twins = [replace(passage("low", long_text(40, marker_at=20)), score=0.5),
             replace(passage("high", long_text(40, marker_at=10)), score=0.9)]
    even = TransformerReader(model_path, normalize="question", passage_prior=0.0).read(QUESTION, twins)
    weighed = TransformerReader(model_path, normalize="question", passage_prior=3.0).read(QUESTION, twins)
    assert sorted(a.score for a in even if a.text == "Zebra") == pytest.approx([0.5, 0.5], abs=0.01)
    by_passage = {a.passage_id: a.score for a in weighed if a.text == "Zebra"}
    assert max(by_passage, key=by_passage.get) == "high"
    assert by_passage["high"] / by_passage["low"] == pytest.approx(math.exp(3.0 * 0.4), rel=0.02)
    # Equal retrieval scores (one review read in reading mode): the prior changes nothing.
    level = [replace(p, score=0.7) for p in twins]
    assert ([a.score for a in TransformerReader(model_path, normalize="question", passage_prior=3.0).read(QUESTION, level)]
            == pytest.approx([a.score for a in even]))


def test_beta_calibration_keeps_the_order_of_answers_and_zero_for_no_span() -> None:
    from qa.reading.transformer import calibrate

    raw = [0.001, 0.05, 0.2, 0.5, 0.8, 0.99]
    scores = [calibrate(p, 0.06, 1.35, 0.3) for p in raw]
    assert scores == sorted(scores) and all(0.0 < s < 1.0 for s in scores)
    assert calibrate(0.0, 0.06, 1.35, 0.3) == 0.0


def test_a_platt_calibration_in_an_older_reader_json_reads_as_its_beta_form() -> None:
    from qa.reading.transformer import calibrate, calibration_of

    old = calibration_of({"calibration": {"a": 0.5, "b": 1.4}})
    assert old == (0.5, 0.5, 1.4)
    z = math.log(0.3 / 0.7)
    assert calibrate(0.3, *old) == pytest.approx(1 / (1 + math.exp(-(0.5 * z + 1.4))))
    assert calibration_of({"calibration": {"a": 0.1, "b": 1.2, "c": 0.3}}) == (0.1, 1.2, 0.3)
    assert calibration_of({}) is None
