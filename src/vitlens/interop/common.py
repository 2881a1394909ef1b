"""Shared pieces of the cross-library loaders."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from vitlens.config import ViTConfig
from vitlens.model.embeddings import resample_grid


class InteropError(ValueError):
    """A state dict or config from another library does not fit; the message says what and why."""


def require_standard(config: ViTConfig, library: str) -> None:
    """The other libraries' ViT is pre-norm, GELU, 1-D learned positions, class-token pooling, linear head."""
    wants = {"block": "pre", "position": "learned", "pool": "cls", "head": "linear", "class_token": True}
    for name, value in wants.items():
        if getattr(config, name) != value:
            raise InteropError(
                f"{library}'s ViT has {name}={value!r}; this config has {name}={getattr(config, name)!r}, "
                f"which has no equivalent there"
            )


def fit_position_embeddings(weight: Tensor, config: ViTConfig) -> Tensor:
    """Resample a (1, 1 + n, D) table of learned positions to ``config``'s grid (bicubic, as HF/timm).

    The source grid is taken as square (as in every published ViT checkpoint) unless it already has
    the target's number of patches.
    """
    n_src = weight.shape[1] - config.num_prefix_tokens
    if n_src == config.num_patches:
        return weight
    side = round(n_src**0.5)
    if side * side != n_src:
        raise InteropError(
            f"position embeddings hold {n_src} patch positions, which is not a square grid and not the "
            f"{config.grid_size[0]}×{config.grid_size[1]} grid of the config: "
            "give a config with the checkpoint's image size"
        )
    prefix, patches = weight[:, : config.num_prefix_tokens], weight[:, config.num_prefix_tokens:]
    return torch.cat([prefix, resample_grid(patches, (side, side), config.grid_size)], dim=1)


def check_complete(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: str) -> None:
    """Same keys and shapes as the model expects, or one clear message listing the differences."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:6]}{' …' if len(missing) > 6 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:6]}{' …' if len(unexpected) > 6 else ''}")
        if wrong:
            parts.append(f"shape mismatch (given vs config) {wrong[:6]}")
        raise InteropError(f"{source} does not fit the config: " + "; ".join(parts))
