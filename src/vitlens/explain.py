"""Explain one prediction of a real model: where the class token looks, how it changes, what it decides.

All of it is read from one traced forward pass (`VisionTransformer.trace`), so the attention maps are
the model's real attention weights.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor

from vitlens.inference import top_classes
from vitlens.model.trace import Trace
from vitlens.model.vit import VisionTransformer

HEAD_FUSIONS = ("mean", "max", "min")


def attention_rollout(trace: Trace, head_fusion: str = "mean", discard_ratio: float = 0.0) -> Tensor:
    """Attention rollout (Abnar & Zuidema, 2020) through all layers of a trace → (B, T, T).

    Per layer the heads are fused (mean, max or min) into A (B, T, T). With ``discard_ratio`` r > 0
    the weakest fraction r of A's entries (per image) are set to 0 — the class token's attention to
    itself is always kept. Then the residual is accounted for, Â = (A + I) / 2, rows are renormalised
    to sum to 1, and the layers are multiplied: R = Â_L ··· Â_1. Rows of R sum to 1; with identity
    attention R is the identity.
    """
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"head_fusion must be one of {', '.join(HEAD_FUSIONS)}, got {head_fusion!r}")
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    maps = trace.stacked("attention").double()  # (L, B, h, T, T)
    fused = {"mean": maps.mean(2), "max": maps.amax(2), "min": maps.amin(2)}[head_fusion]  # (L, B, T, T)
    _, b, t, _ = fused.shape
    eye = torch.eye(t, dtype=fused.dtype)
    result = eye.expand(b, t, t).clone()
    for a in fused:
        if discard_ratio > 0:
            flat = a.reshape(b, -1).clone()
            k = int(flat.shape[1] * discard_ratio)
            if k:
                lowest = flat.topk(k, dim=-1, largest=False).indices
                keep_cls = lowest != 0
                flat.scatter_(1, lowest, torch.where(keep_cls, 0.0, flat.gather(1, lowest)))
            a = flat.view(b, t, t)
        a = (a + eye) / 2
        a = a / a.sum(-1, keepdim=True)
        result = a @ result
    return result.float()


def entropy(p: Tensor, dim: int = -1) -> Tensor:
    """Shannon entropy in nats along ``dim``."""
    return -(p * p.clamp_min(1e-12).log()).sum(dim)


def class_token_path(trace: Trace, image: int = 0) -> tuple[list[float], list[float], list[float]]:
    """The class token through the layers, for one image of a trace: ‖x_cls‖ for x⁰ and after each
    layer, the cosine of each layer's x_cls to the one before, and the entropy (nats, mean over heads)
    of where the class token looks in each layer."""
    states = [trace["x0"][image, 0]] + [trace[f"layers.{i}.output"][image, 0] for i in range(trace.num_layers)]
    norms = [float(s.norm()) for s in states]
    cosines = [float(torch.nn.functional.cosine_similarity(a, b, dim=0)) for a, b in itertools.pairwise(states)]
    entropies = [float(entropy(trace[f"layers.{i}.attention"][image, :, 0]).mean()) for i in range(trace.num_layers)]
    return norms, cosines, entropies


@dataclass
class HeadSummary:
    layer: int
    head: int
    top_patches: list[tuple[int, float]]  # (patch index, attention weight from the class token)
    entropy: float  # of the class token's attention over all tokens, nats
    to_cls: float  # attention of the class token to itself


@dataclass
class Explanation:
    """Everything `vitlens explain` shows, for image 0 of a batch."""

    trace: Trace
    grid: tuple[int, int]
    class_names: list[str]
    heads: list[HeadSummary]
    cls_attention: Tensor  # (L, h, N): the class token's attention to each patch
    rollout: Tensor  # (N,): rollout attention of the class token to each patch
    cls_norms: list[float]  # ‖x_cls‖ for x0 and after each layer
    cls_cosines: list[float]  # cosine of x_cls to the previous layer's, per layer
    cls_entropies: list[float]  # entropy of the class token's attention per layer (mean over heads), nats
    probabilities: Tensor  # (K,)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return top_classes(self.probabilities, self.class_names, k)

    def patch_position(self, index: int) -> tuple[int, int]:
        """(row, column) of a patch in the grid."""
        return divmod(index, self.grid[1])


@torch.inference_mode()
def explain(model: VisionTransformer, image: Tensor, top_k_patches: int = 3, head_fusion: str = "mean",
            discard_ratio: float = 0.0) -> Explanation:
    """Explain the model's prediction for one normalised image (C, H, W) or a batch (use image 0)."""
    if not model.config.class_token:
        raise ValueError("explain follows the class token; this model has none (pool 'mean')")
    model.eval()
    images = image[None] if image.ndim == 3 else image
    trace = model.trace(images.to(next(model.parameters()).device))
    trace = Trace({k: v.detach().cpu() for k, v in trace.items()})
    config = model.config
    grid = (images.shape[-2] // config.patch_size, images.shape[-1] // config.patch_size)
    p = config.num_prefix_tokens
    attention = trace.stacked("attention")[:, 0]  # (L, h, T, T)
    cls_attention = attention[:, :, 0, p:]  # (L, h, N)
    heads = []
    for layer in range(attention.shape[0]):
        for head in range(attention.shape[1]):
            weights, idx = cls_attention[layer, head].topk(min(top_k_patches, cls_attention.shape[-1]))
            heads.append(HeadSummary(layer, head, [(int(i), float(w)) for w, i in zip(weights, idx, strict=True)],
                                     float(entropy(attention[layer, head, 0])), float(attention[layer, head, 0, 0])))
    norms, cosines, entropies = class_token_path(trace)
    rollout = attention_rollout(trace, head_fusion, discard_ratio)[0, 0, p:]
    return Explanation(trace, grid, config.class_labels, heads, cls_attention, rollout, norms, cosines, entropies,
                       trace["probabilities"][0])
