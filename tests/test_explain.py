"""Attention rollout properties and `explain` on a real trained checkpoint, with its PNGs."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from vitlens.cli import app
from vitlens.data import load_data
from vitlens.explain import attention_rollout, explain
from vitlens.inference import load
from vitlens.model import Trace
from vitlens.preprocess import normalise


def random_trace(layers: int, heads: int, tokens: int, seed: int) -> Trace:
    g = torch.Generator().manual_seed(seed)
    trace = Trace()
    for i in range(layers):
        trace[f"layers.{i}.attention"] = torch.randn(2, heads, tokens, tokens, generator=g).mul(3).softmax(-1)
        trace[f"layers.{i}.output"] = torch.zeros(2, tokens, 4)
    return trace


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(2, 9), st.integers(0, 10_000),
       st.sampled_from(["mean", "max", "min"]), st.sampled_from([0.0, 0.3, 0.9]))
def test_rollout_rows_stay_stochastic(layers, heads, tokens, seed, fusion, discard):
    rollout = attention_rollout(random_trace(layers, heads, tokens, seed), fusion, discard)
    assert rollout.shape == (2, tokens, tokens) and (rollout >= 0).all()
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, tokens))


def test_identity_attention_gives_identity_rollout():
    trace = Trace()
    for i in range(3):
        trace[f"layers.{i}.attention"] = torch.eye(5).expand(1, 2, 5, 5).clone()
        trace[f"layers.{i}.output"] = torch.zeros(1, 5, 4)
    torch.testing.assert_close(attention_rollout(trace), torch.eye(5)[None])


def test_discard_ratio_drops_the_weakest_weights_but_not_cls_to_cls():
    trace = random_trace(1, 2, 6, 0)
    a = trace["layers.0.attention"][0].double().mean(0)
    # discard ratio 0: plain rollout of one layer, (A + I)/2 renormalised
    expected = (a + torch.eye(6)) / 2
    torch.testing.assert_close(attention_rollout(trace)[0].double(), expected / expected.sum(-1, keepdim=True),
                               atol=1e-6, rtol=0)
    # discard ratio 0.5: the 18 weakest of the 36 fused weights are zeroed first (CLS→CLS kept)
    kept = a.clone().flatten()
    weakest = kept.topk(18, largest=False).indices
    kept[weakest[weakest != 0]] = 0
    kept = (kept.view(6, 6) + torch.eye(6)) / 2
    torch.testing.assert_close(attention_rollout(trace, discard_ratio=0.5)[0].double(),
                               kept / kept.sum(-1, keepdim=True), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout(trace, discard_ratio=1.0)


def test_explain_a_real_prediction(trained):
    folder, _ = trained
    model = load(folder)
    test = load_data(None, model.config.image_size)["test"]
    image = normalise(test.images[11, 0], model.config)
    result = explain(model, image)  # the mnist preset: 5×5 = 25 patches, 26 tokens
    assert result.cls_attention.shape == (6, 4, 25) and result.rollout.shape == (25,)
    assert len(result.heads) == 24 and len(result.cls_norms) == 7 and len(result.cls_cosines) == 6
    assert len(result.cls_entropies) == 6 and all(0 < e <= np.log(26) for e in result.cls_entropies)
    torch.testing.assert_close(result.probabilities, model(image[None]).softmax(-1)[0], atol=1e-5, rtol=0)
    assert result.top(1)[0][0] in result.class_names
    assert result.patch_position(7) == (1, 2)


def test_explain_cli_writes_pngs(trained, tmp_path):
    folder, _ = trained
    res = CliRunner().invoke(app, ["explain", str(folder), "--digit", "5", "--layer", "2", "--head", "1",
                                   "--save-dir", str(tmp_path)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "where the class token looks" in res.output and "layer 2, head 1" in res.output
    for name in ("patch_grid", "cls_attention", "rollout", "cls_evolution", "probabilities"):
        img = np.asarray(Image.open(tmp_path / f"{name}.png").convert("L"), dtype=float)
        assert img.shape[0] > 150 and img.shape[1] > 150, name
        assert img.std() > 10, f"{name}.png looks blank"
    grid = Image.open(tmp_path / "cls_attention.png")
    assert grid.size[1] > grid.size[0]  # 6 layers down, 4 heads across
    res = CliRunner().invoke(app, ["explain", str(folder), "--layer", "9", "--head", "0"])
    assert res.exit_code == 2 and "--layer must be in 0…5" in " ".join(res.output.split())
