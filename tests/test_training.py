"""Training, evaluation, checkpoints and exact resume with the real trainer on real (bundled) digits."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from vitlens import preset
from vitlens.checkpoint import CheckpointError, load_model
from vitlens.cli import app
from vitlens.data import load_data
from vitlens.inference import predict
from vitlens.model.vit import VisionTransformer
from vitlens.preprocess import normalise
from vitlens.training import COMPILE_MIN_STEPS, TrainConfig, WeightAverage, evaluate, resolve_compile, train

TINY = preset("mnist", image_size=28, patch_size=7, dim=32, depth=2, heads=2, dropout=0.1, drop_path=0.1)
TC = TrainConfig(epochs=2, batch_size=50, lr=3e-3, warmup_epochs=0.5)


@pytest.fixture(scope="module")
def small_data():
    data = load_data()
    return {"train": data["train"].subset(range(0, 4000, 8)), "test": data["test"].subset(range(0, 1000, 5))}


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_gives_exactly_the_uninterrupted_weights(tmp_path, small_data):
    straight = train(TINY, small_data, tmp_path / "straight", TC, progress=False)
    first = train(TINY, small_data, tmp_path / "split", replace(TC), progress=False, stop_after_steps=10)
    assert first.interrupted and first.history[0]["epoch"] == 1  # stopped after epoch 1 (10 steps)
    resumed = train(TINY, small_data, tmp_path / "split", TC, resume=True, progress=False)
    assert states_equal(straight.model.state_dict(), resumed.model.state_dict())  # the weight averages
    trained = [torch.load(tmp_path / run / "training_state.pt", weights_only=True)["trained_weights"]
               for run in ("straight", "split")]
    assert states_equal(*trained)  # and the weights being trained
    assert [r["test_accuracy"] for r in straight.history] == [r["test_accuracy"] for r in resumed.history]


def test_resume_from_the_middle_of_an_epoch(tmp_path, small_data):
    straight = train(TINY, small_data, tmp_path / "a", TC, progress=False)
    train(TINY, small_data, tmp_path / "b", TC, progress=False, stop_after_steps=7)
    train(TINY, small_data, tmp_path / "b", TC, resume=True, progress=False, stop_after_steps=13)
    resumed = train(TINY, small_data, tmp_path / "b", TC, resume=True, progress=False)
    assert states_equal(straight.model.state_dict(), resumed.model.state_dict())


def test_checkpoint_folder_contents_and_reload(tmp_path, small_data):
    result = train(TINY, small_data, tmp_path / "run", TC, progress=False)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "model.safetensors", "training_state.pt", "metrics.jsonl", "curves.png",
            "confusion.png"} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preprocessing"]["mean"] == [0.1307] and config["class_names"] == [str(d) for d in range(10)]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    loaded = load_model(tmp_path / "run")
    assert states_equal(loaded.state_dict(), result.model.state_dict())
    assert evaluate(loaded, small_data["test"]).accuracy == result.history[-1]["test_accuracy"]


def test_resume_with_other_settings_is_refused(tmp_path, small_data):
    train(TINY, small_data, tmp_path / "run", TC, progress=False, stop_after_steps=3)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match=r"other settings .*'lr': \(0.1, 0.003\)"):
        train(TINY, small_data, tmp_path / "run", replace(TC, lr=0.1), resume=True, progress=False)
    with pytest.raises(CheckpointError, match="different model config"):
        train(TINY.replace(depth=3), small_data, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(CheckpointError, match="already holds a training run"):
        train(TINY, small_data, tmp_path / "run", TC, progress=False)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


def test_broken_checkpoints_get_clear_errors(tmp_path, small_data):
    train(TINY, small_data, tmp_path / "run", TC, progress=False, stop_after_steps=2)
    run = tmp_path / "run"
    state = load_file(str(run / "model.safetensors"))
    state["head.fc.weight"] = torch.zeros(3, 32)
    save_file(state, str(tmp_path / "other.safetensors"))
    (run / "model.safetensors").rename(tmp_path / "kept.safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors is missing"):
        load_model(run)
    (tmp_path / "other.safetensors").rename(run / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"do not fit its config.json .*head\.fc\.weight"):
        load_model(run)
    (run / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(run)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nothing")


def test_training_learns_real_digits(trained):
    _, result = trained
    accuracies = [r["test_accuracy"] for r in result.history]
    assert accuracies[-1] > 0.85  # chance is 0.1 on these 1,000 held-out digits
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    # the mnist preset takes 30×30: the 28×28 digits were resized to it, and evaluate does the same
    assert result.model.config.image_size == (30, 30)
    native, sized = load_data()["test"], load_data(None, (30, 30))["test"]
    assert evaluate(result.model, native).accuracy == evaluate(result.model, sized).accuracy == accuracies[-1]


def _digit_png(path, pixels, dark_on_white=False, scale=1):
    img = Image.fromarray(255 - pixels if dark_on_white else pixels)
    if scale != 1:
        img = img.resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    img.save(path)


def test_predict_reads_real_pngs_any_polarity_and_size(trained, tmp_path):
    out, _ = trained
    test = load_data()["test"]
    picks = range(0, 1000, 50)
    for i in picks:
        pixels = test.images[i, 0].numpy()
        _digit_png(tmp_path / f"plain_{i:03}.png", pixels)
        _digit_png(tmp_path / f"paper_{i:03}.png", pixels, dark_on_white=True, scale=4)
    plain = predict(out, sorted(tmp_path.glob("plain_*.png")))
    paper = predict(out, sorted(tmp_path.glob("paper_*.png")))
    truth = [str(int(test.labels[i])) for i in picks]
    assert sum(p.label == t for p, t in zip(plain, truth, strict=True)) >= 16
    assert sum(p.label == t for p, t in zip(paper, truth, strict=True)) >= 15  # inverted, 112×112, re-centred
    assert all(abs(sum(p.probabilities) - 1) < 1e-5 for p in plain)


def test_a_digit_file_is_read_as_the_training_digits_were(trained, tmp_path):
    """A 28×28 MNIST PNG given to the 30×30 preset goes through the resize the data sets went through."""
    out, result = trained
    native, sized = load_data()["test"], load_data(None, result.model.config.image_size)["test"]
    paths = [tmp_path / f"digit_{i}.png" for i in range(0, 1000, 100)]
    for i, path in zip(range(0, 1000, 100), paths, strict=True):
        Image.fromarray(native.images[i, 0].numpy()).save(path)
    got = torch.tensor([p.probabilities for p in predict(out, paths)])
    with torch.no_grad():
        want = result.model(normalise(sized.images[0:1000:100], result.model.config)).softmax(-1)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_cli_eval_and_predict(trained, tmp_path):
    out, result = trained
    runner = CliRunner()
    res = runner.invoke(app, ["eval", str(out), "--json", "--plot", str(tmp_path / "cm.png")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["accuracy"] == result.history[-1]["test_accuracy"] and len(data["per_class"]) == 10
    assert (tmp_path / "cm.png").stat().st_size > 1000
    res = runner.invoke(app, ["eval", str(out), "--split", "valid"])
    assert res.exit_code == 2 and "--split must be train or test" in " ".join(res.output.split())
    test = load_data()["test"]
    _digit_png(tmp_path / "d.png", test.images[7, 0].numpy())
    res = runner.invoke(app, ["predict", str(out), str(tmp_path / "d.png"), "--json", "-k", "2"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)[0]["top"]) == 2
    res = runner.invoke(app, ["predict", str(out), str(tmp_path / "missing.png")])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())
    res = runner.invoke(app, ["trace", str(out), "--digit", "3", "--layers", "0"], terminal_width=200)
    assert res.exit_code == 0 and "trained weights" in " ".join(res.output.split())


def test_ctrl_c_saves_and_resume_finishes(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "vitlens.cli", "train", "--model", str(tmp_path / "cfg.json"), "--out", str(out),
           "--epochs", "50", "--batch-size", "50", "--no-compile"]  # eager, whatever auto decides
    TINY.to_json(tmp_path / "cfg.json")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=os.environ | {"COLUMNS": "200"})
    deadline = time.time() + 120
    while not (out / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Continue with: vitlens train --resume" in output
    saved = load_model(out)
    state = torch.load(out / "training_state.pt", weights_only=True)
    assert 0 < state["step"] < 50 * 80 and saved.config == TINY


def test_compile_setting(monkeypatch):
    """auto compiles long runs only, and on a CPU only where a C++ compiler is found; saved runs from before the
    setting (compile: true/false) still load."""
    cpu = torch.device("cpu")
    assert not resolve_compile("auto", cpu, COMPILE_MIN_STEPS - 1)
    assert resolve_compile("on", cpu, 1) and not resolve_compile("off", cpu, 10**6)
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    assert not resolve_compile("auto", cpu, 10**6)  # no compiler on PATH: eager
    monkeypatch.setenv("CXX", sys.executable)  # any existing program stands in for the compiler's path
    assert resolve_compile("auto", cpu, 10**6)
    assert TrainConfig.from_dict({"compile": True}).compile == "on"
    assert TrainConfig.from_dict({"compile": False}).compile == "off"
    with pytest.raises(ValueError, match="compile must be auto, on or off"):
        TrainConfig(compile="sometimes")


def test_weight_average_follows_its_formula():
    """avg ← β·avg + (1 − β)·w with β = min(decay, (1 + n) / (10 + n)), checked against the recurrence in float64."""
    model = VisionTransformer(preset("mnist", dim=8, depth=1, heads=1))
    average = WeightAverage(model, decay=0.5)
    expected = [p.detach().double().clone() for p in model.parameters()]
    torch.manual_seed(0)
    for n in range(12):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(n)
        beta = min(0.5, (1 + n) / (10 + n))
        trained = [p.detach().double() for p in model.parameters()]
        expected = [beta * e + (1 - beta) * w for e, w in zip(expected, trained, strict=True)]
    for e, a, p in zip(expected, average.model.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a.double(), e, rtol=1e-6, atol=1e-6)
        assert not a.requires_grad and not torch.equal(a, p)


def test_ema_off_saves_the_trained_weights(tmp_path, small_data):
    result = train(TINY, small_data, tmp_path / "run", replace(TC, ema=0.0), progress=False)
    state = torch.load(tmp_path / "run" / "training_state.pt", weights_only=True)
    assert "trained_weights" not in state
    assert states_equal(load_model(tmp_path / "run").state_dict(), result.model.state_dict())
    assert TrainConfig.from_dict({"epochs": 3}).ema == 0.0  # a run saved before the weight average: resumed without


def test_missing_data_is_reported(tmp_path):
    res = CliRunner().invoke(app, ["train", "--data", f"mnist:{tmp_path}", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "has no train-images-idx3-ubyte" in " ".join(res.output.split())
    assert not (tmp_path / "o").exists()
