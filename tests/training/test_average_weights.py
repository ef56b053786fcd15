"""Averaging span models: every tensor is the mean, the dtype and tokenizer are kept, calibration is not."""
from __future__ import annotations

import json

import pytest

from training.average_weights import average

pytestmark = pytest.mark.unit
torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")


def _model(folder, scale, shape=(2, 3), calibrated=True):
    folder.mkdir()
    safetensors_torch.save_file({"w": torch.full(shape, scale, dtype=torch.float16),
                                 "b": torch.arange(3, dtype=torch.float16) * scale},
                                str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(f'{{"from": {scale}}}')
    config = {"max_length": 384, "stride": 128, "normalize": "question", "passage_prior": 3.0}
    if calibrated:
        config.update({"calibration": {"a": 0.5, "b": 1.0}, "no_answer_threshold": 0.2, "null_margin": 1.0})
    (folder / "reader.json").write_text(json.dumps(config))
    return folder


def test_the_average_is_each_tensor_mean_in_the_first_models_dtype(tmp_path):
    a, b = _model(tmp_path / "a", 1.0), _model(tmp_path / "b", 3.0)
    average([a, b], tmp_path / "out")
    out = safetensors_torch.load_file(str(tmp_path / "out" / "model.safetensors"))
    assert out["w"].dtype == torch.float16
    assert torch.equal(out["w"], torch.full((2, 3), 2.0, dtype=torch.float16))
    assert out["b"].tolist() == [0.0, 2.0, 4.0]
    assert json.loads((tmp_path / "out" / "tokenizer.json").read_text()) == {"from": 1.0}


def test_the_average_keeps_window_settings_and_drops_the_calibration(tmp_path):
    average([_model(tmp_path / "a", 1.0), _model(tmp_path / "b", 2.0)], tmp_path / "out")
    config = json.loads((tmp_path / "out" / "reader.json").read_text())
    assert config["max_length"] == 384 and config["passage_prior"] == 3.0
    assert "calibration" not in config and "no_answer_threshold" not in config and "null_margin" not in config


def test_models_of_different_shapes_are_refused_by_name_and_nothing_is_written(tmp_path):
    a, b = _model(tmp_path / "a", 1.0), _model(tmp_path / "b", 2.0, shape=(3, 3))
    with pytest.raises(ValueError, match=r"tensor w is \(3, 3\), not \(2, 3\)"):
        average([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_folder_without_weights_is_named(tmp_path):
    a = _model(tmp_path / "a", 1.0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty/model.safetensors does not exist"):
        average([a, tmp_path / "empty"], tmp_path / "out")
