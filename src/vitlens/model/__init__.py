"""The Vision Transformer network: pure torch, no I/O."""

from vitlens.model.attention import Attention, attention_weights
from vitlens.model.block import MLP, EncoderBlock
from vitlens.model.embeddings import ClassToken, PositionEmbedding, resample_grid, sincos_2d
from vitlens.model.patches import PatchEmbedding, patchify, unpatchify
from vitlens.model.trace import LAYER_KEYS, Trace
from vitlens.model.vit import ClassifierHead, InputError, VisionTransformer

__all__ = [
    "LAYER_KEYS", "MLP", "Attention", "ClassToken", "ClassifierHead", "EncoderBlock", "InputError",
    "PatchEmbedding", "PositionEmbedding", "Trace", "VisionTransformer", "attention_weights",
    "patchify", "resample_grid", "sincos_2d", "unpatchify",
]
