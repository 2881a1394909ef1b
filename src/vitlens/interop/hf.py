"""Hugging Face ``ViTForImageClassification`` ↔ vitlens.

Two key layouts exist: the *checkpoint* layout of every ViT published on the Hub
(``vit.encoder.layer.{i}.attention.attention.query.weight``, …, as written by transformers 4.x)
and the *module* layout of transformers ≥ 5 (``vit.layers.{i}.attention.q_proj.weight``, …).
Both are read; either can be written. The only real conversion is fusing HF's separate query, key
and value projections into vitlens' one ``qkv`` matrix (rows stacked q, k, v) and reshaping the
patch projection from Conv2d (D, C, P, P) to Linear (D, C·P²).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from vitlens.config import ViTConfig
from vitlens.interop.common import InteropError, check_complete, fit_position_embeddings, require_standard
from vitlens.model.vit import VisionTransformer

# Per-layer names: (vitlens, Hub checkpoint layout, transformers ≥ 5 module layout).
_LAYER = [
    ("norm1", "layernorm_before", "layernorm_before"),
    ("attn.proj", "attention.output.dense", "attention.o_proj"),
    ("norm2", "layernorm_after", "layernorm_after"),
    ("mlp.fc1", "intermediate.dense", "mlp.fc1"),
    ("mlp.fc2", "output.dense", "mlp.fc2"),
]
_QKV = {"checkpoint": ("attention.attention.query", "attention.attention.key", "attention.attention.value"),
        "modules": ("attention.q_proj", "attention.k_proj", "attention.v_proj")}
_LAYER_PREFIX = {"checkpoint": "vit.encoder.layer.{}.", "modules": "vit.layers.{}."}
_TOP = [
    ("vit.embeddings.cls_token", "class_token.weight"),
    ("vit.embeddings.position_embeddings", "position_embedding.weight"),
    ("vit.embeddings.patch_embeddings.projection.bias", "patch_embedding.proj.bias"),
    ("vit.layernorm.weight", "norm.weight"),
    ("vit.layernorm.bias", "norm.bias"),
    ("classifier.weight", "head.fc.weight"),
    ("classifier.bias", "head.fc.bias"),
]
_PATCH_WEIGHT = "vit.embeddings.patch_embeddings.projection.weight"


def _layer_names(layout: str, i: int) -> list[tuple[str, str]]:
    """(vitlens name prefix, HF name prefix) pairs of layer ``i``'s non-qkv parameters."""
    column = 1 if layout == "checkpoint" else 2
    prefix = _LAYER_PREFIX[layout].format(i)
    return [(f"blocks.{i}.{row[0]}", prefix + row[column]) for row in _LAYER]


def config_from_hf(hf_config: Any) -> ViTConfig:
    """A `ViTConfig` from a transformers ``ViTConfig`` (object or its ``to_dict()``)."""
    c = hf_config.to_dict() if hasattr(hf_config, "to_dict") else dict(hf_config)
    act = c.get("hidden_act", "gelu")
    if act not in ("gelu", "relu"):
        raise InteropError(f"hidden_act {act!r} is not supported: vitlens has exact 'gelu' and 'relu'")
    id2label = c.get("id2label") or {}
    num_labels = int(c.get("num_labels") or len(id2label) or 2)
    names = [str(id2label.get(i, id2label.get(str(i), i))) for i in range(num_labels)] if id2label else None
    image_size = c.get("image_size", 224)
    return ViTConfig(
        image_size=(int(image_size[0]), int(image_size[1])) if isinstance(image_size, (list, tuple))
        else (int(image_size), int(image_size)),
        patch_size=int(c.get("patch_size", 16)),
        in_channels=int(c.get("num_channels", 3)),
        num_classes=num_labels,
        class_names=names,
        dim=int(c["hidden_size"]),
        depth=int(c["num_hidden_layers"]),
        heads=int(c["num_attention_heads"]),
        mlp_dim=int(c["intermediate_size"]),
        activation=act,
        dropout=float(c.get("hidden_dropout_prob", 0.0)),
        attention_dropout=float(c.get("attention_probs_dropout_prob", 0.0)),
        qkv_bias=bool(c.get("qkv_bias", True)),
        layer_norm_eps=float(c.get("layer_norm_eps", 1e-12)),
        name=c.get("_name_or_path") or None,
    )


def config_to_hf(config: ViTConfig) -> dict[str, Any]:
    """The ``config.json`` contents of the equivalent ``ViTForImageClassification``."""
    require_standard(config, "Hugging Face")
    names = config.class_names or [f"LABEL_{i}" for i in range(config.num_classes)]
    return {
        "architectures": ["ViTForImageClassification"],
        "model_type": "vit",
        "image_size": config.image_size[0] if config.image_size[0] == config.image_size[1] else list(config.image_size),
        "patch_size": config.patch_size,
        "num_channels": config.in_channels,
        "hidden_size": config.dim,
        "num_hidden_layers": config.depth,
        "num_attention_heads": config.heads,
        "intermediate_size": config.hidden_dim,
        "hidden_act": config.activation,
        "hidden_dropout_prob": config.dropout,
        "attention_probs_dropout_prob": config.attention_dropout,
        "qkv_bias": config.qkv_bias,
        "layer_norm_eps": config.layer_norm_eps,
        "initializer_range": 0.02,
        "id2label": {str(i): n for i, n in enumerate(names)},
        "label2id": {n: i for i, n in enumerate(names)},
    }


def from_hf_state_dict(state: Mapping[str, Tensor], config: ViTConfig) -> dict[str, Tensor]:
    """A vitlens state dict from a HF ViT state dict (either layout), resampling positions if needed."""
    require_standard(config, "Hugging Face")
    src = {("vit." + k if k.startswith(("embeddings.", "encoder.", "layers.", "layernorm.")) else k): v
           for k, v in state.items()}  # a bare ViTModel state dict lacks the "vit." prefix
    src.pop("vit.embeddings.mask_token", None)
    layout = "modules" if any(k.startswith("vit.layers.") for k in src) else "checkpoint"
    out: dict[str, Tensor] = {}
    try:
        for hf, ours in _TOP:
            if hf in src:
                out[ours] = src.pop(hf)
        out["patch_embedding.proj.weight"] = src.pop(_PATCH_WEIGHT).reshape(config.dim, -1)
        for i in range(config.depth):
            for ours, hf in _layer_names(layout, i):
                for kind in ("weight", "bias"):
                    out[f"{ours}.{kind}"] = src.pop(f"{hf}.{kind}")
            prefix = _LAYER_PREFIX[layout].format(i)
            for kind in ("weight", "bias") if config.qkv_bias else ("weight",):
                parts = [src.pop(f"{prefix}{name}.{kind}") for name in _QKV[layout]]
                out[f"blocks.{i}.attn.qkv.{kind}"] = torch.cat(parts, dim=0)
    except KeyError as err:
        raise InteropError(f"the Hugging Face state dict has no {err.args[0]!r} that this config needs") from err
    if "position_embedding.weight" in out:
        out["position_embedding.weight"] = fit_position_embeddings(out["position_embedding.weight"], config)
    leftover = sorted(k for k in src if not k.startswith("vit.pooler."))
    if leftover:
        raise InteropError(f"the Hugging Face state dict has keys this config does not use: {leftover[:6]}")
    return out


def to_hf_state_dict(model: VisionTransformer, layout: str = "checkpoint") -> dict[str, Tensor]:
    """The model's weights as a ``ViTForImageClassification`` state dict.

    ``layout="checkpoint"``: Hub checkpoint names (loadable by ``from_pretrained`` in transformers
    4 and 5); ``layout="modules"``: the module names of transformers ≥ 5 (``load_state_dict``).
    """
    if layout not in ("checkpoint", "modules"):
        raise ValueError(f"layout must be 'checkpoint' or 'modules', got {layout!r}")
    config = model.config
    require_standard(config, "Hugging Face")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    out = {hf: state[ours] for hf, ours in _TOP}
    out[_PATCH_WEIGHT] = state["patch_embedding.proj.weight"].reshape(
        config.dim, config.in_channels, config.patch_size, config.patch_size
    )
    for i in range(config.depth):
        for ours, hf in _layer_names(layout, i):
            for kind in ("weight", "bias"):
                out[f"{hf}.{kind}"] = state[f"{ours}.{kind}"]
        prefix = _LAYER_PREFIX[layout].format(i)
        for kind in ("weight", "bias") if config.qkv_bias else ("weight",):
            for name, part in zip(_QKV[layout], state[f"blocks.{i}.attn.qkv.{kind}"].chunk(3), strict=True):
                out[f"{prefix}{name}.{kind}"] = part.clone()
    return out


def load_hf(source: Any, config: ViTConfig | None = None) -> VisionTransformer:
    """A `VisionTransformer` from a HF ``ViTForImageClassification`` (model object) or its state dict.

    With a state dict, give the ``config`` (e.g. ``config_from_hf(json.load(open("config.json")))``).
    """
    if hasattr(source, "state_dict") and hasattr(source, "config"):
        config = config or config_from_hf(source.config)
        state = source.state_dict()
    else:
        state = source
    if config is None:
        raise InteropError("a Hugging Face state dict needs its config: pass config=config_from_hf(...)")
    model = VisionTransformer(config)
    converted = from_hf_state_dict(state, config)
    check_complete(converted, model.state_dict(), "the Hugging Face weights")
    model.load_state_dict(converted)
    return model
