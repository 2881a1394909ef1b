"""ONNX export of a trained checkpoint, run by onnxruntime."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vitlens.cli import app
from vitlens.data import load_data
from vitlens.inference import load
from vitlens.training import standardise, to_unit

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def test_export_cli_and_onnxruntime_parity(trained, tmp_path):
    folder, _ = trained
    target = tmp_path / "vit.onnx"
    res = CliRunner().invoke(app, ["export", str(folder), "--format", "onnx", "-o", str(target)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "onnxruntime matches PyTorch" in " ".join(res.output.split())
    model = load(folder)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    test = load_data(None, model.config.image_size)["test"]
    for batch in (1, 3, 64):  # the batch axis is dynamic
        x = standardise(to_unit(test.images[:batch], torch.device("cpu")), model.config)
        got = session.run(["logits"], {"images": x.numpy()})[0]
        with torch.inference_mode():
            expected = model(x).numpy()
        assert got.shape == (batch, 10)
        assert np.abs(got - expected).max() < 1e-4
        assert (got.argmax(-1) == expected.argmax(-1)).all()
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert json.loads(meta["vitlens_config"])["model"] == model.config.to_dict()


def test_export_errors(trained, tmp_path):
    folder, _ = trained
    res = CliRunner().invoke(app, ["export", str(folder), "--format", "tflite"])
    assert res.exit_code == 2 and "--format must be onnx" in res.output
    res = CliRunner().invoke(app, ["export", str(tmp_path / "none")])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())
