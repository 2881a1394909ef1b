"""`Trace`: every intermediate of one forward pass, under the names the study notes use.

Keys (shapes for a batch of B images, N patches, T tokens, D features, h heads of d features):
``image`` (B,C,H,W), ``patches`` (B,N,C,P,P), ``patch_vectors`` (B,N,C·P²),
``patch_embeddings`` (B,N,D), ``tokens`` (B,T,D; class token first), ``position_embeddings``
(T,D), ``x0`` (B,T,D); per layer ``layers.{i}.`` + ``norm1``, ``q``, ``k``, ``v`` (B,h,T,d),
``scores`` (B,h,T,T; before softmax), ``attention`` (B,h,T,T; after softmax),
``attention_output``, ``residual1``, ``norm2``, ``mlp_hidden`` (B,T,M), ``mlp_output``,
``residual2``, ``output`` (B,T,D); then ``final_norm`` (B,T,D), ``pooled``/``cls`` (B,D),
``logits`` and ``probabilities`` (B,K).

The model fills a `Trace` only when one is passed in; otherwise nothing is recorded and the
fused attention kernel runs.
"""

from __future__ import annotations

import torch
from torch import Tensor

LAYER_KEYS = (
    "norm1", "q", "k", "v", "scores", "attention", "attention_output", "residual1",
    "norm2", "mlp_hidden", "mlp_output", "residual2", "output",
)


class Trace(dict[str, Tensor]):
    """A dict of named intermediates with helpers to read them per layer."""

    @property
    def num_layers(self) -> int:
        return sum(1 for key in self if key.startswith("layers.") and key.endswith(".output"))

    def layer(self, index: int) -> dict[str, Tensor]:
        """The intermediates of encoder block ``index`` without their ``layers.{i}.`` prefix."""
        if not 0 <= index < self.num_layers:
            raise IndexError(f"layer {index} is out of range: this trace has {self.num_layers} layers")
        prefix = f"layers.{index}."
        return {key[len(prefix):]: value for key, value in self.items() if key.startswith(prefix)}

    def stacked(self, name: str) -> Tensor:
        """One per-layer intermediate stacked over layers: (L, ...), e.g. ``stacked("attention")``."""
        return torch.stack([self[f"layers.{i}.{name}"] for i in range(self.num_layers)])

    def detach(self) -> Trace:
        return Trace({key: value.detach() for key, value in self.items()})


def record(trace: Trace | None, name: str, value: Tensor) -> None:
    """Store ``value`` under ``name`` when a trace is being collected (a no-op otherwise)."""
    if trace is not None:
        trace[name] = value
