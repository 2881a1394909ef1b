"""Seed steps 1–3: image → P×P patches (row-major) → flat vectors → linear projection to D."""

from __future__ import annotations

from torch import Tensor, nn

from vitlens.model.trace import Trace, record


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """Cut images into non-overlapping patches, row by row, left to right.

    images (B, C, H, W) → patches (B, N, C, P, P) with N = (H/P)·(W/P); patch n sits at grid
    row n // (W/P), column n % (W/P).
    """
    b, c, h, w = images.shape
    p = patch_size
    gh, gw = h // p, w // p
    x = images.reshape(b, c, gh, p, gw, p)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, c, p, p)


def unpatchify(patches: Tensor, grid_size: tuple[int, int]) -> Tensor:
    """Exact inverse of `patchify`: patches (B, N, C, P, P) → images (B, C, H, W)."""
    b, n, c, p, _ = patches.shape
    gh, gw = grid_size
    if gh * gw != n:
        raise ValueError(f"grid {gh}×{gw} holds {gh * gw} patches, but {n} were given")
    x = patches.reshape(b, gh, gw, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, c, gh * p, gw * p)


class PatchEmbedding(nn.Module):
    """Flatten each patch (C·P² values, channel-major then row-major) and project it to D.

    ``proj.weight`` (D, C·P²) is the transposed matrix E of the notes: embedding = vector · Eᵀ + b.
    It equals the usual Conv2d(C, D, kernel=P, stride=P) weight reshaped to (D, C·P·P).
    """

    def __init__(self, in_channels: int, patch_size: int, dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(in_channels * patch_size * patch_size, dim)

    def forward(self, images: Tensor, trace: Trace | None = None) -> Tensor:
        """images (B, C, H, W) → patch embeddings (B, N, D)."""
        patches = patchify(images, self.patch_size)
        vectors = patches.flatten(2)
        embeddings = self.proj(vectors)
        if trace is not None:
            record(trace, "patches", patches)
            record(trace, "patch_vectors", vectors)
            record(trace, "patch_embeddings", embeddings)
        return embeddings


def grid_of(images: Tensor, patch_size: int) -> tuple[int, int]:
    return (images.shape[-2] // patch_size, images.shape[-1] // patch_size)


__all__ = ["PatchEmbedding", "grid_of", "patchify", "unpatchify"]
