"""timm ``VisionTransformer`` state-dict layout ↔ vitlens.

vitlens chose timm's block names (``blocks.{i}.norm1``, ``attn.qkv``, ``attn.proj``, ``mlp.fc1``,
…), so only the embeddings and the head are renamed, and the patch projection is reshaped from
Conv2d (D, C, P, P) to Linear (D, C·P²). timm's fused ``qkv`` rows are stacked q, k, v, as here.
Checkpoints with timm's ``fc_norm`` (LayerNorm *after* mean pooling) or ``reg_token`` have no
vitlens equivalent and are refused with a message.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from vitlens.config import ViTConfig
from vitlens.interop.common import InteropError, check_complete, fit_position_embeddings, require_standard
from vitlens.model.vit import VisionTransformer

_RENAMES = [
    ("cls_token", "class_token.weight"),
    ("pos_embed", "position_embedding.weight"),
    ("patch_embed.proj.bias", "patch_embedding.proj.bias"),
    ("head.weight", "head.fc.weight"),
    ("head.bias", "head.fc.bias"),
]


def from_timm_state_dict(state: Mapping[str, Tensor], config: ViTConfig) -> dict[str, Tensor]:
    """A vitlens state dict from a timm ViT state dict, resampling positions to the config's grid."""
    require_standard(config, "timm")
    unsupported = sorted(k for k in state if k.startswith(("fc_norm.", "reg_token", "attn_pool.", "norm_pre.")))
    if unsupported:
        raise InteropError(
            f"timm keys {unsupported[:4]} (fc_norm / register tokens / attention pooling) are not supported"
        )
    out = dict(state)
    for theirs, ours in _RENAMES:
        if theirs in out:
            out[ours] = out.pop(theirs)
    if "patch_embed.proj.weight" in out:
        out["patch_embedding.proj.weight"] = out.pop("patch_embed.proj.weight").reshape(config.dim, -1)
    if "position_embedding.weight" in out:
        out["position_embedding.weight"] = fit_position_embeddings(out["position_embedding.weight"], config)
    return out


def to_timm_state_dict(model: VisionTransformer) -> dict[str, Tensor]:
    """The model's weights in timm's ``VisionTransformer`` layout."""
    config = model.config
    require_standard(config, "timm")
    out = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for theirs, ours in _RENAMES:
        out[theirs] = out.pop(ours)
    w = out.pop("patch_embedding.proj.weight")
    out["patch_embed.proj.weight"] = w.reshape(config.dim, config.in_channels, config.patch_size, config.patch_size)
    return out


def load_timm(state: Mapping[str, Tensor], config: ViTConfig) -> VisionTransformer:
    """A `VisionTransformer` with the weights of a timm ViT state dict (timm uses LayerNorm eps 1e-6)."""
    model = VisionTransformer(config)
    converted = from_timm_state_dict(state, config)
    check_complete(converted, model.state_dict(), "the timm weights")
    model.load_state_dict(converted)
    return model
