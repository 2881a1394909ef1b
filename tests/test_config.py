import json
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vitlens import PRESETS, ConfigError, ViTConfig, create_model, preset
from vitlens.config import load_config

HF_SIZES = {  # preset → (hidden, layers, heads, patch) as transformers.ViTConfig arguments
    "vit_tiny_patch16_224": (192, 12, 3, 16),
    "vit_small_patch16_224": (384, 12, 6, 16),
    "vit_base_patch16_224": (768, 12, 12, 16),
    "vit_base_patch32_224": (768, 12, 12, 32),
    "vit_large_patch16_224": (1024, 24, 16, 16),
    "vit_huge_patch14_224": (1280, 32, 16, 14),
}


@pytest.mark.parametrize("name", list(HF_SIZES))
def test_imagenet_presets_match_hugging_face_parameter_count(name):
    transformers = pytest.importorskip("transformers")
    hidden, layers, heads, patch = HF_SIZES[name]
    hf_config = transformers.ViTConfig(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, patch_size=patch, image_size=224, num_labels=1000,
    )
    with torch.device("meta"):
        ours = create_model(name).num_parameters()
        theirs = sum(p.numel() for p in transformers.ViTForImageClassification(hf_config).parameters())
    assert ours == theirs


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds(name):
    config = preset(name)
    with torch.device("meta"):
        model = create_model(config)
    assert model.num_parameters() > 0
    assert config.name == name


def test_seed_toy_is_the_notes_model():
    c = preset("seed_toy")
    assert (c.image_size, c.patch_size, c.in_channels, c.dim, c.depth) == ((6, 6), 2, 1, 4, 1)
    assert (c.block, c.activation, c.hidden_dim, c.class_names) == ("post", "relu", 8, ["cat", "dog", "bird"])
    assert c.num_tokens == 10


configs = st.builds(
    ViTConfig,
    image_size=st.sampled_from([(8, 8), (8, 12), (12, 4)]),
    patch_size=st.sampled_from([2, 4]),
    in_channels=st.sampled_from([1, 3]),
    num_classes=st.integers(1, 20),
    dim=st.sampled_from([8, 16, 32]),
    depth=st.integers(1, 3),
    heads=st.sampled_from([1, 2, 4]),
    mlp_ratio=st.sampled_from([1.0, 2.0, 4.0]),
    block=st.sampled_from(["pre", "post"]),
    activation=st.sampled_from(["gelu", "relu"]),
    position=st.sampled_from(["learned", "learned2d", "sincos2d", "none"]),
    qkv_bias=st.booleans(),
    layer_norm_eps=st.sampled_from([1e-6, 1e-12]),
    weight_init=st.sampled_from(["timm", "torch"]),
    mean=st.none(),
    std=st.none(),
)


@settings(max_examples=40, deadline=None)
@given(configs)
def test_config_json_round_trip(config):
    again = ViTConfig.from_json(config.to_json())
    assert again == config
    assert json.loads(again.to_json()) == json.loads(config.to_json())


def test_config_file_and_checkpoint_folder(tmp_path):
    config = preset("mnist", depth=2)
    config.to_json(tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == config
    ckpt = tmp_path / "run"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model": config.to_dict(), "preprocessing": {}}))
    assert load_config(ckpt) == config
    assert load_config("mnist") == preset("mnist")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dim": 10, "heads": 3}, "dim 10 is not divisible by heads 3"),
        ({"image_size": 30, "patch_size": 4}, "image_size 30×30 is not divisible by patch_size 4"),
        ({"block": "sandwich"}, "block must be one of pre, post"),
        ({"position": "rope"}, "position must be one of"),
        ({"weight_init": "xavier"}, "weight_init must be one of timm, torch"),
        ({"pool": "cls", "class_token": False}, "pool 'cls' needs class_token"),
        ({"head": "mlp"}, "head 'mlp' needs head_hidden"),
        ({"depth": 0}, "depth must be a positive integer"),
        ({"mean": (0.5, 0.5)}, "mean has 2 values but in_channels is 1"),
        ({"class_names": ["a", "b"]}, "class_names has 2 names but num_classes is 10"),
        ({"dropout": 1.5}, "dropout must be in [0, 1)"),
    ],
)
def test_invalid_configs_say_what_is_wrong(changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        preset("mnist", **changes)


def test_divisibility_error_suggests_sizes():
    with pytest.raises(ConfigError) as err:
        preset("mnist", image_size=30, patch_size=4)
    assert "e.g. 28×28 or 32×32" in str(err.value)


def test_unknown_fields_and_presets_are_named(tmp_path):
    with pytest.raises(ConfigError, match="unknown config field"):
        ViTConfig.from_dict({"dimension": 4})
    with pytest.raises(ConfigError, match=r"unknown preset 'vit_giant'"):
        preset("vit_giant")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json is not valid JSON"):
        ViTConfig.from_json(bad)
