"""Sizes and costs of a ViT, from its config alone (seed 001's "Performance Insights", made exact).

FLOPs are counted as 2 per multiply-add (MAC) over the matrix products, the terms that dominate;
LayerNorm, softmax, activations and additions are left out. For one image, with N patches,
T tokens, D features, M MLP features, K classes and L layers:

    patch embedding      N·(C·P²)·D
    per layer: q, k, v   3·T·D²
               QKᵀ       T²·D          (all heads together: h·T²·d)
               weights·V T²·D
               output    T·D²
               MLP       2·T·D·M
    head                 D·K  (plus D·h₁ + h₁·h₂ + … for an MLP head)

ViT-B/16 at 224: T = 197, 17.6 GMACs = 35.1 GFLOPs per image, and 12·197² = 465,708 attention
values per layer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from vitlens.config import ViTConfig
from vitlens.model.block import EncoderBlock
from vitlens.model.vit import VisionTransformer


@dataclass
class ModelInfo:
    config: ViTConfig
    parameters: dict[str, int]
    macs: dict[str, int]
    batch_size: int

    @property
    def total_parameters(self) -> int:
        return sum(self.parameters.values())

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def flops(self) -> int:
        """FLOPs per image for one forward pass (2 per MAC)."""
        return 2 * self.total_macs

    @property
    def attention_values_per_layer(self) -> int:
        """h·T² attention weights per image and layer."""
        return self.config.heads * self.config.num_tokens**2

    def attention_bytes(self, bytes_per_value: int) -> int:
        """Memory of all layers' attention matrices for the batch, if materialised (explicit path)."""
        return self.attention_values_per_layer * self.config.depth * self.batch_size * bytes_per_value

    def as_dict(self) -> dict[str, object]:
        c = self.config
        return {
            "name": c.name,
            "image_size": list(c.image_size),
            "patch_size": c.patch_size,
            "patches": c.num_patches,
            "tokens": c.num_tokens,
            "parameters": self.parameters,
            "total_parameters": self.total_parameters,
            "macs_per_image": self.macs,
            "gflops_per_image": self.flops / 1e9,
            "attention_values_per_layer": self.attention_values_per_layer,
            "batch_size": self.batch_size,
            "attention_memory_bytes": {"fp32": self.attention_bytes(4), "bf16": self.attention_bytes(2)},
        }


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_parameters(model: VisionTransformer) -> dict[str, int]:
    """Parameters per part: patch embedding, class token, position embeddings, encoder parts, norm, head."""
    parts: dict[str, nn.Module | None] = {
        "patch embedding": model.patch_embedding,
        "class token": model.class_token,
        "position embeddings": model.position_embedding,
        "final norm": model.norm,
        "head": model.head,
    }
    counts = {name: _numel(m) if m is not None else 0 for name, m in parts.items()}
    attn = mlp = norms = 0
    for block in model.blocks:
        assert isinstance(block, EncoderBlock)
        attn += _numel(block.attn)
        mlp += _numel(block.mlp)
        norms += _numel(block.norm1) + _numel(block.norm2)
    ordered = {
        "patch embedding": counts["patch embedding"],
        "class token": counts["class token"],
        "position embeddings": counts["position embeddings"],
        "encoder: attention (qkv + output)": attn,
        "encoder: MLP": mlp,
        "encoder: LayerNorms": norms,
        "final norm": counts["final norm"],
        "head": counts["head"],
    }
    return ordered


def count_macs(config: ViTConfig) -> dict[str, int]:
    """Multiply-adds per image and forward pass, by part (see the module docstring)."""
    c = config
    n, t, d, m, layers = c.num_patches, c.num_tokens, c.dim, c.hidden_dim, c.depth
    widths = [d, *c.head_hidden, c.num_classes]
    head = sum(a * b for a, b in itertools.pairwise(widths))
    return {
        "patch embedding": n * c.patch_dim * d,
        "attention: q, k, v": layers * 3 * t * d * d,
        "attention: QKᵀ and weights·V": layers * 2 * t * t * d,
        "attention: output": layers * t * d * d,
        "MLP": layers * 2 * t * d * m,
        "head": head,
    }


def model_info(config: ViTConfig, batch_size: int = 1) -> ModelInfo:
    """Parameter counts (built on the meta device: no memory), MACs and attention sizes."""
    with torch.device("meta"):
        model = VisionTransformer(config)
    return ModelInfo(config, count_parameters(model), count_macs(config), batch_size)
