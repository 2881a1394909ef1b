"""Seed steps 4–5: the learnable class token and the position embeddings E_pos.

Position embeddings come in four kinds (``ViTConfig.position``):

- ``learned``   one learnable vector per token, (1, T, D), the class token's first (the seeds',
                the original ViT's, timm's and Hugging Face's layout);
- ``learned2d`` a learnable row vector plus column vector per patch, and one for the class token;
- ``sincos2d``  fixed 2-D sine-cosine features (MAE / "simple ViT"); the class token gets zeros;
- ``none``      no position information at all.

A model can run on another grid of patches than it was built for: learned tables are resampled
with bicubic interpolation exactly as Hugging Face's ``interpolate_pos_encoding=True`` does (the
class token's position is kept as it is); sin-cos tables are recomputed for the new grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resample_grid(patch_positions: Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int]) -> Tensor:
    """Bicubic resampling of per-patch vectors: (…, gh·gw, D) on ``old_grid`` → (…, gh'·gw', D)."""
    if tuple(old_grid) == tuple(new_grid):
        return patch_positions
    *lead, _, d = patch_positions.shape
    grid = patch_positions.reshape(-1, old_grid[0], old_grid[1], d).permute(0, 3, 1, 2)
    dtype = grid.dtype
    grid = F.interpolate(grid.float(), size=new_grid, mode="bicubic", align_corners=False).to(dtype)
    return grid.permute(0, 2, 3, 1).reshape(*lead, new_grid[0] * new_grid[1], d)


def resample_line(table: Tensor, length: int) -> Tensor:
    """Linear resampling of a (n, D) table of row or column vectors to (length, D)."""
    if table.shape[0] == length:
        return table
    out = F.interpolate(table.T[None].float(), size=length, mode="linear", align_corners=False)
    return out[0].T.to(table.dtype)


def sincos_2d(grid: tuple[int, int], dim: int, temperature: float = 10000.0) -> Tensor:
    """Fixed 2-D sine-cosine position features, (gh·gw, D): [sin y·ω, cos y·ω, sin x·ω, cos x·ω]
    with ω_i = temperature^(−i/(D/4)), y the patch row and x the patch column."""
    gh, gw = grid
    y, x = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64), indexing="ij")
    omega = temperature ** -(torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    y = y.flatten()[:, None] * omega[None]
    x = x.flatten()[:, None] * omega[None]
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1).float()


class ClassToken(nn.Module):
    """The learnable class token x_cls (1, 1, D), prepended to the patch embeddings."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, patch_embeddings: Tensor) -> Tensor:
        """(B, N, D) → tokens (B, N + 1, D), class token first."""
        return torch.cat([self.weight.expand(patch_embeddings.shape[0], -1, -1), patch_embeddings], dim=1)


class PositionEmbedding(nn.Module):
    """E_pos for a grid of patches plus ``num_prefix`` class tokens; call it with a grid → (T, D)."""

    def __init__(self, kind: str, grid: tuple[int, int], dim: int, num_prefix: int) -> None:
        super().__init__()
        self.kind, self.dim, self.num_prefix = kind, dim, num_prefix
        self.grid: tuple[int, int] = (grid[0], grid[1])
        n = grid[0] * grid[1]
        if kind == "learned":
            self.weight = nn.Parameter(torch.zeros(1, num_prefix + n, dim))
            nn.init.trunc_normal_(self.weight, std=0.02)
        elif kind == "learned2d":
            self.row = nn.Parameter(torch.zeros(grid[0], dim))
            self.col = nn.Parameter(torch.zeros(grid[1], dim))
            self.prefix = nn.Parameter(torch.zeros(num_prefix, dim))
            for p in (self.row, self.col, self.prefix):
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, grid: tuple[int, int] | None = None) -> Tensor:
        """Position embeddings for ``grid`` (default: the grid built for), shape (T, D)."""
        grid = self.grid if grid is None else (grid[0], grid[1])
        if self.kind == "learned":
            table = self.weight[0]
            prefix, patches = table[: self.num_prefix], table[self.num_prefix:]
            return torch.cat([prefix, resample_grid(patches, self.grid, grid)])
        if self.kind == "learned2d":
            row, col = resample_line(self.row, grid[0]), resample_line(self.col, grid[1])
            patches = (row[:, None, :] + col[None, :, :]).reshape(-1, self.dim)
            return torch.cat([self.prefix, patches])
        device = self._device()
        prefix = torch.zeros(self.num_prefix, self.dim, device=device)
        if self.kind == "sincos2d":
            return torch.cat([prefix, sincos_2d(grid, self.dim).to(device)])
        return torch.zeros(self.num_prefix + grid[0] * grid[1], self.dim, device=device)

    def _device(self) -> torch.device:
        return next(iter(self.parameters()), torch.empty(0)).device

    def extra_repr(self) -> str:
        return f"kind={self.kind}, grid={self.grid}, dim={self.dim}, num_prefix={self.num_prefix}"
