"""Parity with Hugging Face transformers (the oracle) and the timm state-dict layout."""

import json

import pytest
import torch
from safetensors.torch import save_file

from vitlens import ViTConfig, create_model
from vitlens.interop import (
    config_from_hf,
    config_to_hf,
    from_timm_state_dict,
    load_hf,
    load_timm,
    to_hf_state_dict,
    to_timm_state_dict,
)
from vitlens.interop.common import InteropError

transformers = pytest.importorskip("transformers")

HF_CONFIGS = {
    "square-rgb": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                       image_size=16, patch_size=4, num_channels=3, num_labels=5),
    "non-square-grey": dict(hidden_size=24, num_hidden_layers=3, num_attention_heads=2, intermediate_size=40,
                            image_size=(16, 28), patch_size=4, num_channels=1, num_labels=10, hidden_act="relu",
                            layer_norm_eps=1e-6),
    "patch8-no-qkv-bias": dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=6, intermediate_size=192,
                               image_size=32, patch_size=8, num_channels=3, num_labels=7, qkv_bias=False),
}


def hf_model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.ViTConfig(**HF_CONFIGS[name])
    config._attn_implementation = "eager"  # so HF returns its attention maps
    model = transformers.ViTForImageClassification(config).eval()
    with torch.no_grad():  # HF initialises LayerNorms to 1/0 and biases to 0: randomise so they matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def images_for(config: ViTConfig, batch: int = 3, size=None) -> torch.Tensor:
    h, w = size or config.image_size
    return torch.randn(batch, config.in_channels, h, w, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_logits_hidden_states_and_attention_match_hugging_face(name):
    hf = hf_model(name)
    ours = load_hf(hf).eval()
    x = images_for(ours.config)
    with torch.no_grad():
        out = hf(x, output_hidden_states=True, output_attentions=True)
        trace = ours.trace(x)
        logits = ours(x)
    assert (out.logits - logits).abs().max() < 1e-5
    assert (out.logits - trace["logits"]).abs().max() < 1e-5
    assert len(out.hidden_states) == ours.config.depth + 1
    assert (out.hidden_states[0] - trace["x0"]).abs().max() < 1e-5
    for i in range(ours.config.depth):
        assert (out.hidden_states[i + 1] - trace[f"layers.{i}.output"]).abs().max() < 1e-5
        assert (out.attentions[i] - trace[f"layers.{i}.attention"]).abs().max() < 1e-5


@pytest.mark.parametrize("name", list(HF_CONFIGS))
def test_export_back_to_hugging_face(name, tmp_path):
    ours = load_hf(hf_model(name, seed=1)).eval()
    x = images_for(ours.config)
    expected = ours(x)
    # transformers ≥ 5 module names: a strict load_state_dict
    target = transformers.ViTForImageClassification(transformers.ViTConfig(**HF_CONFIGS[name])).eval()
    target.load_state_dict(to_hf_state_dict(ours, layout="modules"), strict=True)
    with torch.no_grad():
        assert (target(x).logits - expected).abs().max() < 1e-5
    # Hub checkpoint names, read back by transformers' own from_pretrained
    save_file({k: v.contiguous() for k, v in to_hf_state_dict(ours).items()}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(config_to_hf(ours.config)))
    loaded = transformers.ViTForImageClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert (loaded(x).logits - expected).abs().max() < 1e-5


def test_config_round_trip_through_hugging_face():
    config = config_from_hf(transformers.ViTConfig(**HF_CONFIGS["non-square-grey"]))
    assert config.image_size == (16, 28) and config.activation == "relu" and config.num_classes == 10
    again = config_from_hf(config_to_hf(config))
    assert again.to_dict() | {"name": None} == config.to_dict() | {"name": None}


def test_interpolated_positions_match_hugging_face():
    hf = hf_model("square-rgb", seed=2)
    ours = load_hf(hf).eval()
    for size in [(24, 32), (8, 8), (20, 20)]:
        x = images_for(ours.config, batch=2, size=size)
        with torch.no_grad():
            expected = hf(x, interpolate_pos_encoding=True).logits
            got = ours(x, interpolate_pos_encoding=True)
        assert (expected - got).abs().max() < 1e-5, size


def test_loading_into_another_image_size_resamples_positions():
    hf = hf_model("square-rgb", seed=3)
    config = config_from_hf(hf.config).replace(image_size=(24, 32))
    ours = load_hf(hf, config).eval()
    assert ours.position_embedding.weight.shape == (1, 1 + 6 * 8, 32)
    x = images_for(config, batch=2)
    with torch.no_grad():
        assert (hf(x, interpolate_pos_encoding=True).logits - ours(x)).abs().max() < 1e-5


# timm's layout, per the rename table transformers published for converting timm ViTs
# (convert_vit_timm_to_pytorch.py): timm key → HF Hub checkpoint key; qkv rows split q, k, v.
def timm_to_hf_by_published_table(state: dict, layers: int, dim: int) -> dict:
    out = {}
    layer_map = {"norm1": "layernorm_before", "attn.proj": "attention.output.dense", "norm2": "layernorm_after",
                 "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    top = {"cls_token": "vit.embeddings.cls_token", "pos_embed": "vit.embeddings.position_embeddings",
           "patch_embed.proj.weight": "vit.embeddings.patch_embeddings.projection.weight",
           "patch_embed.proj.bias": "vit.embeddings.patch_embeddings.projection.bias",
           "head.weight": "classifier.weight", "head.bias": "classifier.bias",
           "norm.weight": "vit.layernorm.weight", "norm.bias": "vit.layernorm.bias"}
    state = dict(state)
    for k, v in top.items():
        out[v] = state.pop(k)
    for i in range(layers):
        for t, h in layer_map.items():
            for kind in ("weight", "bias"):
                out[f"vit.encoder.layer.{i}.{h}.{kind}"] = state.pop(f"blocks.{i}.{t}.{kind}")
        for kind in ("weight", "bias"):
            fused = state.pop(f"blocks.{i}.attn.qkv.{kind}")
            for j, name in enumerate(("query", "key", "value")):
                out[f"vit.encoder.layer.{i}.attention.attention.{name}.{kind}"] = fused[j * dim:(j + 1) * dim]
    assert not state, f"keys the published table does not know: {sorted(state)}"
    return out


def test_timm_layout_matches_the_published_timm_to_hf_table(tmp_path):
    hf_args = HF_CONFIGS["square-rgb"]
    ours = load_hf(hf_model("square-rgb", seed=4)).eval()
    timm_state = to_timm_state_dict(ours)
    assert timm_state["patch_embed.proj.weight"].shape == (32, 3, 4, 4)
    assert timm_state["blocks.0.attn.qkv.weight"].shape == (96, 32)
    hf_state = timm_to_hf_by_published_table(timm_state, layers=2, dim=32)
    save_file({k: v.contiguous() for k, v in hf_state.items()}, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(transformers.ViTConfig(**hf_args).to_json_string())
    hf = transformers.ViTForImageClassification.from_pretrained(tmp_path).eval()
    x = images_for(ours.config)
    with torch.no_grad():
        assert (hf(x).logits - ours(x)).abs().max() < 1e-5
    again = load_timm(timm_state, ours.config).eval()
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), ours.state_dict().values(), strict=True))


def test_timm_positions_resample_into_a_larger_grid():
    ours = create_model(ViTConfig(image_size=16, patch_size=4, in_channels=3, num_classes=5, dim=32, depth=1,
                                  heads=4)).eval()
    bigger = ours.config.replace(image_size=(24, 24))
    loaded = load_timm(to_timm_state_dict(ours), bigger).eval()
    x = images_for(bigger, batch=1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ours(x, interpolate_pos_encoding=True))


def test_interop_errors_are_specific():
    post = ViTConfig(image_size=16, patch_size=4, num_classes=5, dim=32, depth=1, heads=4, block="post")
    with pytest.raises(InteropError, match=r"block='pre'"):
        to_hf_state_dict(create_model(post))
    cfg = post.replace(block="pre")
    state = to_timm_state_dict(create_model(cfg))
    state["fc_norm.weight"] = torch.ones(32)
    with pytest.raises(InteropError, match="fc_norm"):
        from_timm_state_dict(state, cfg)
    hf_state = to_hf_state_dict(create_model(cfg))
    del hf_state["vit.encoder.layer.0.layernorm_after.weight"]
    with pytest.raises(InteropError, match=r"layernorm_after\.weight"):
        load_hf(hf_state, cfg)
    with pytest.raises(InteropError, match="needs its config"):
        load_hf(hf_state)
