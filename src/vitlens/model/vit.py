"""Seed steps 7–8: the Vision Transformer — embed → L encoder blocks → norm → pool → head.

    x⁰ = [x_cls; x₁E; …; x_N E] + E_pos                     (B, T, D)
    xˡ = Block_l(xˡ⁻¹),  l = 1…L                              (B, T, D)
    y  = Head(Pool(LN(xᴸ)))                                   (B, K)

Stages, as in timm: `forward_features` (tokens after the final norm), `pool`, `forward_head`.
`trace` runs the same computation and returns every intermediate (see `vitlens.model.trace`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from vitlens.config import ViTConfig
from vitlens.model.block import ACTIVATIONS, EncoderBlock
from vitlens.model.embeddings import ClassToken, PositionEmbedding
from vitlens.model.patches import PatchEmbedding
from vitlens.model.trace import Trace, record


class InputError(ValueError):
    """The images given to the model do not fit its config; the message says how to fix them."""


class ClassifierHead(nn.Module):
    """Linear head W·z + b, or an MLP head (hidden layers with the block activation) before it."""

    def __init__(self, dim: int, num_classes: int, hidden: list[int], activation: str) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        self.hidden = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, pooled: Tensor, pre_logits: bool = False) -> Tensor:
        """pooled (B, D) → logits (B, K), or the input of the last linear layer if ``pre_logits``."""
        x = self.hidden(pooled)
        return x if pre_logits else self.fc(x)


class VisionTransformer(nn.Module):
    """A ViT exactly as `ViTConfig` describes it. Inputs are normalised images (B, C, H, W)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        c = self.config = config
        self.check_inputs = True  # shape/dtype/finite checks with clear errors; benchmarks may turn off
        self.gradient_checkpointing = False  # see set_gradient_checkpointing
        self.patch_embedding = PatchEmbedding(c.in_channels, c.patch_size, c.dim)
        self.class_token = ClassToken(c.dim) if c.class_token else None
        self.position_embedding = PositionEmbedding(c.position, c.grid_size, c.dim, c.num_prefix_tokens)
        self.dropout = nn.Dropout(c.dropout)
        rates = [c.drop_path * i / max(c.depth - 1, 1) for i in range(c.depth)]  # linear decay rule
        self.blocks = nn.ModuleList(
            EncoderBlock(
                c.dim, c.heads, c.hidden_dim, form=c.block, activation=c.activation, qkv_bias=c.qkv_bias,
                dropout=c.dropout, attention_dropout=c.attention_dropout, drop_path=rate, eps=c.layer_norm_eps,
            )
            for rate in rates
        )
        # Post-norm blocks already end in a LayerNorm, so the final norm is only for pre-norm.
        self.norm: nn.Module = nn.LayerNorm(c.dim, eps=c.layer_norm_eps) if c.block == "pre" else nn.Identity()
        self.head = ClassifierHead(c.dim, c.num_classes, c.head_hidden, c.activation)
        if c.weight_init == "timm":
            self.apply(_init_weights)

    # ------------------------------------------------------------------ stages
    def embed(self, images: Tensor, trace: Trace | None = None, interpolate_pos_encoding: bool = False) -> Tensor:
        """images (B, C, H, W) → x⁰ (B, T, D): patch embeddings, class token, + position embeddings."""
        grid = self.validate(images, interpolate_pos_encoding)
        images = images.to(next(self.parameters()).dtype)  # a model cast to bf16 takes fp32 images too
        record(trace, "image", images)
        tokens = self.patch_embedding(images, trace)
        if self.class_token is not None:
            tokens = self.class_token(tokens)
        positions = self.position_embedding(grid)
        x = tokens + positions
        if trace is not None:
            record(trace, "tokens", tokens)
            record(trace, "position_embeddings", positions)
            record(trace, "x0", x)
        return self.dropout(x)

    def forward_features(
        self, images: Tensor, trace: Trace | None = None, interpolate_pos_encoding: bool = False
    ) -> Tensor:
        """images (B, C, H, W) → encoded tokens after the final norm (B, T, D)."""
        x = self.embed(images, trace, interpolate_pos_encoding)
        recompute = self.gradient_checkpointing and trace is None and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            # checkpointing keeps only each block's input; backward recomputes the block (same dropout masks)
            x = checkpoint(block, x, use_reentrant=False) if recompute else block(x, trace, f"layers.{i}.")
        x = self.norm(x)
        record(trace, "final_norm", x)
        return x

    def pool(self, x: Tensor) -> Tensor:
        """Encoded tokens (B, T, D) → one vector per image (B, D): the class token, or the patch mean."""
        if self.config.pool == "cls":
            return x[:, 0]
        return x[:, self.config.num_prefix_tokens:].mean(dim=1)

    def forward_head(self, pooled: Tensor, pre_logits: bool = False) -> Tensor:
        """Pooled (B, D) → logits (B, K)."""
        return self.head(pooled, pre_logits)

    def forward(self, images: Tensor, interpolate_pos_encoding: bool = False) -> Tensor:
        """images (B, C, H, W) → logits (B, K)."""
        return self.forward_head(self.pool(self.forward_features(images, None, interpolate_pos_encoding)))

    def trace(self, images: Tensor, interpolate_pos_encoding: bool = False) -> Trace:
        """Run the model on ``images`` and return every intermediate (see `Trace`), logits included.

        Attention is computed explicitly here so the scores and weights are real; the result is the
        same as ``forward`` (to float rounding).
        """
        trace = Trace()
        x = self.forward_features(images, trace, interpolate_pos_encoding)
        pooled = self.pool(x)
        logits = self.forward_head(pooled)
        record(trace, "pooled", pooled)
        if self.config.pool == "cls":
            record(trace, "cls", pooled)
        record(trace, "logits", logits)
        record(trace, "probabilities", logits.softmax(dim=-1))
        return trace

    # ------------------------------------------------------------------ helpers
    def set_explicit_attention(self, explicit: bool = True) -> None:
        """Use the step-by-step attention (softmax(QKᵀ/√d)V) instead of the fused kernel everywhere."""
        for block in self.blocks:
            assert isinstance(block, EncoderBlock)
            block.attn.explicit = explicit

    def set_attention_backend(self, backend: str) -> None:
        """``"auto"`` (math on CPU for short sequences, else SDPA) or ``"fused"`` (SDPA whenever untraced)."""
        if backend not in ("auto", "fused"):
            raise ValueError(f"attention backend must be 'auto' or 'fused', got {backend!r}")
        for block in self.blocks:
            assert isinstance(block, EncoderBlock)
            block.attn.backend = backend

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Trade compute for memory in training: keep only each encoder block's input (B, T, D) for the
        backward pass and recompute the block's inside then (about one more forward pass of compute;
        activation memory per layer falls from O(T·M + h·T²) to O(T·D)). Gradients are unchanged."""
        self.gradient_checkpointing = enabled

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def validate(self, images: Tensor, interpolate_pos_encoding: bool = False) -> tuple[int, int]:
        """Check images against the config and return their grid of patches (H/P, W/P)."""
        c = self.config
        if not self.check_inputs:
            return (images.shape[-2] // c.patch_size, images.shape[-1] // c.patch_size)
        if not isinstance(images, Tensor):
            raise InputError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
        if images.ndim == 3:
            fix = "images.unsqueeze(0) for one image" if images.shape[0] == c.in_channels else ""
            if c.in_channels == 1:
                fix += (" or " if fix else "") + "images.unsqueeze(1) for a batch of grey images"
            raise InputError(
                f"images has shape {tuple(images.shape)}: the batch dimension is missing; the model takes "
                f"(B, C, H, W) = (B, {c.in_channels}, {c.image_size[0]}, {c.image_size[1]}): use {fix}"
            )
        if images.ndim != 4:
            raise InputError(f"images must have shape (B, C, H, W), got shape {tuple(images.shape)}")
        if not images.is_floating_point():
            raise InputError(
                f"images has dtype {images.dtype}; the model takes normalised floats: convert with "
                f"images.float() / 255 and normalise with mean {c.mean} and std {c.std}"
            )
        _, ch, h, w = images.shape
        if ch != c.in_channels:
            hint = " (convert grey images to RGB, e.g. images.expand(-1, 3, -1, -1))" if ch == 1 else ""
            hint = " (convert RGB images to grey, e.g. images.mean(1, keepdim=True))" if c.in_channels == 1 else hint
            raise InputError(f"images have {ch} channels but the model takes {c.in_channels}{hint}")
        p = c.patch_size
        if h % p or w % p:
            raise InputError(
                f"image size {h}×{w} is not divisible by the patch size {p}: resize or crop to a multiple of "
                f"{p}, e.g. {(h // p or 1) * p}×{(w // p or 1) * p} (the model was built for "
                f"{c.image_size[0]}×{c.image_size[1]})"
            )
        if (h, w) != c.image_size and not interpolate_pos_encoding:
            raise InputError(
                f"image size {h}×{w} differs from the {c.image_size[0]}×{c.image_size[1]} the model was built for: "
                f"resize the images, or pass interpolate_pos_encoding=True to resample the position embeddings"
            )
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(images).all()):
            raise InputError("images contain NaN or infinite values; check the image loading and normalisation")
        return (h // p, w // p)


def _init_weights(module: nn.Module) -> None:
    """timm-style init: truncated normal (std 0.02) for linear weights, zero biases, unit LayerNorm.

    With ``weight_init="torch"`` this is skipped and every Linear keeps PyTorch's default
    U(±1/√fan_in) (std 1/√(3·fan_in): 0.021 at D = 768, where it matches timm's 0.02, but 0.072 at
    D = 64, where 0.02 makes a small ViT learn several times slower from scratch).
    """
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
