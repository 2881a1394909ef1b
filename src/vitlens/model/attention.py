"""Multi-head self-attention: softmax(QKᵀ/√d)·V over all tokens, h heads of d = D/h features."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from vitlens.model.trace import Trace, record


def attention_weights(q: Tensor, k: Tensor, scale: float) -> tuple[Tensor, Tensor]:
    """Explicit attention: q, k (B,h,T,d) → scores QKᵀ·scale and weights softmax(scores), (B,h,T,T).

    The scale is applied to q (B·h·T·d values) rather than to the scores (B·h·T²), the cheaper side."""
    scores = (q * scale) @ k.transpose(-2, -1)
    return scores, scores.softmax(dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention with one fused query/key/value projection.

    ``qkv.weight`` (3D, D) stacks W_Q, W_K, W_V (timm's layout); ``proj`` is the output projection W_O.
    The normal forward uses ``F.scaled_dot_product_attention`` (fused kernel); when a trace is
    collected, or ``explicit`` is set, the same result is computed step by step so the scores and
    weights can be returned. ``backend="auto"`` (the default) also takes the step-by-step path on
    the CPU for short sequences (T ≤ ``MATH_MAX_TOKENS``), where it measured faster than the CPU
    flash kernel (see benchmarks/); ``"fused"`` always uses SDPA when nothing is traced.
    """

    MATH_MAX_TOKENS = 128

    def __init__(
        self, dim: int, heads: int, qkv_bias: bool = True, attention_dropout: float = 0.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.explicit = False
        self.backend = "auto"
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.attention_dropout = attention_dropout
        self.proj = nn.Linear(dim, dim)
        self.proj_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, trace: Trace | None = None, prefix: str = "") -> Tensor:
        """x (B, T, D) → (B, T, D)."""
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        p = self.attention_dropout if self.training else 0.0
        fused = not self.explicit and (self.backend == "fused" or x.is_cuda or t > self.MATH_MAX_TOKENS)
        if trace is None and fused:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        else:
            scores, weights = attention_weights(q, k, self.scale)
            out = F.dropout(weights, p) @ v
            for name, value in (("q", q), ("k", k), ("v", v), ("scores", scores), ("attention", weights)):
                record(trace, prefix + name, value)
        out = out.transpose(1, 2).reshape(b, t, d)
        return self.proj_dropout(self.proj(out))
