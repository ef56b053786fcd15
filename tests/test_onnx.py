"""Helpers for running the ONNX models (qa.onnx): how inputs are batched."""
from __future__ import annotations

from qa.onnx import SHRINK, length_batches
import pytest

pytestmark = pytest.mark.unit


def test_length_batches_keep_similar_lengths_together_and_respect_the_size() -> None:
    lengths = [100, 12, 95, 80, 11, 10, 74, 10]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches = length_batches(order, lengths, size=2)
    assert [[lengths[i] for i in b] for b in batches] == [[100, 95], [80, 74], [12, 11], [10, 10]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:  # no batch pads a row by more than 1 - SHRINK of its longest
        assert all(lengths[i] >= SHRINK * lengths[b[0]] for i in b)


def test_length_batches_of_one_length_fill_up_to_the_size() -> None:
    assert length_batches(list(range(5)), [7] * 5, size=16) == [[0, 1, 2, 3, 4]]
    assert length_batches([], [], size=4) == []
