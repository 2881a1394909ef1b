"""Seed step 6: one encoder block — attention and MLP, each with a residual and a LayerNorm.

``pre``  (seed 000, ViT/timm/HF):  x = x + Attn(LN₁(x));      x = x + MLP(LN₂(x))
``post`` (seed 001, "Add & Norm"): x = LN₁(x + Attn(x));      x = LN₂(x + MLP(x))
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vitlens.model.attention import Attention
from vitlens.model.trace import Trace, record

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


class MLP(nn.Module):
    """Position-wise feed-forward: fc2(act(fc1(x))), D → M → D."""

    def __init__(self, dim: int, hidden: int, activation: str = "gelu", dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, trace: Trace | None = None, prefix: str = "") -> Tensor:
        """x (B, T, D) → (B, T, D); the hidden activations (B, T, M) are traced as ``mlp_hidden``."""
        hidden = self.act(self.fc1(x))
        record(trace, prefix + "mlp_hidden", hidden)
        return self.dropout(self.fc2(self.dropout(hidden)))


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample with probability ``p`` while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = torch.empty(x.shape[0], *([1] * (x.ndim - 1)), device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class EncoderBlock(nn.Module):
    """LayerNorm → multi-head self-attention → residual → LayerNorm → MLP → residual (or post-norm)."""

    def __init__(
        self,
        dim: int,
        heads: int,
        hidden: int,
        *,
        form: str = "pre",
        activation: str = "gelu",
        qkv_bias: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        drop_path: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.form = form
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias, attention_dropout, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, hidden, activation, dropout)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor, trace: Trace | None = None, prefix: str = "") -> Tensor:
        """x (B, T, D) → (B, T, D)."""
        if self.form == "pre":
            h1 = self.norm1(x)
            a = self.attn(h1, trace, prefix)
            r1 = x + self.drop_path(a)
            h2 = self.norm2(r1)
            m = self.mlp(h2, trace, prefix)
            r2 = r1 + self.drop_path(m)
            out = r2
        else:
            a = self.attn(x, trace, prefix)
            r1 = x + self.drop_path(a)
            h1 = self.norm1(r1)
            m = self.mlp(h1, trace, prefix)
            r2 = h1 + self.drop_path(m)
            h2 = self.norm2(r2)
            out = h2
        if trace is not None:
            for name, value in (
                ("norm1", h1), ("attention_output", a), ("residual1", r1), ("norm2", h2),
                ("mlp_output", m), ("residual2", r2), ("output", out),
            ):
                record(trace, prefix + name, value)
        return out
