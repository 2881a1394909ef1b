"""Augmentation done on whole batches of tensors (one affine warp per image, no PIL, no workers).

``digits``: small random rotation (±10°), scale (0.9–1.1) and shift (±2 px) — handwriting varies
this much. ``crop_flip``: shift by up to 4 px with zero fill (a padded random crop) and a horizontal
flip half the time — the standard CIFAR recipe. ``none``: identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

KINDS = ("digits", "crop_flip", "none")


def random_affine(images: Tensor, generator: torch.Generator, kind: str) -> Tensor:
    """images (B, C, H, W) float → the same shape, each image warped by its own random affine map."""
    if kind == "none":
        return images
    if kind not in KINDS:
        raise ValueError(f"augmentation must be one of {', '.join(KINDS)}, got {kind!r}")
    b, _, h, w = images.shape

    def uniform(lo: float, hi: float) -> Tensor:
        return torch.rand(b, generator=generator) * (hi - lo) + lo

    if kind == "digits":
        angle = uniform(-10, 10) * math.pi / 180
        scale = uniform(0.9, 1.1)
        shift_x, shift_y = uniform(-2, 2), uniform(-2, 2)
        flip = torch.ones(b)
    else:
        angle, scale = torch.zeros(b), torch.ones(b)
        shift_x = torch.randint(-4, 5, (b,), generator=generator).float()
        shift_y = torch.randint(-4, 5, (b,), generator=generator).float()
        flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos * flip, -sin, -shift_x * 2 / w], dim=1),
        torch.stack([sin * flip, cos, -shift_y * 2 / h], dim=1),
    ], dim=1).to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
