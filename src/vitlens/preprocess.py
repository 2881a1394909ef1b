"""Images from files (any PIL-readable format, mode and size) → normalised tensors for a config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from vitlens.config import ViTConfig

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs (PIL raises above 2× this)


class ImageLoadError(ValueError):
    """An image file could not be read; the message names the file and what to do."""


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, with a clear error for missing, unreadable or truncated files."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"image file {path} does not exist")
    try:
        with Image.open(path) as img:
            img.load()
            return ImageOps.exif_transpose(img) or img
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as err:
        raise ImageLoadError(f"cannot read image {path}: {err} — is it a complete PNG/JPEG/… file?") from err


def to_model_mode(img: Image.Image, channels: int) -> Image.Image:
    """Grey ('L') for 1 channel, RGB for 3; transparency is composited onto white."""
    if img.mode in ("RGBA", "LA", "P", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if channels == 1:
        return img.convert("L")
    if channels == 3:
        return img.convert("RGB")
    raise ImageLoadError(f"images can be converted to 1 or 3 channels, the config wants {channels}")


def border_is_bright(pixels: np.ndarray) -> bool:
    """True when the image's outer ring is mostly light: a dark figure on white paper."""
    ring = np.concatenate([pixels[0].ravel(), pixels[-1].ravel(), pixels[:, 0].ravel(), pixels[:, -1].ravel()])
    return float(ring.mean()) > 127.5


def image_to_tensor(img: Image.Image, config: ViTConfig, invert: str | bool = "auto") -> Tensor:
    """A PIL image → (C, H, W) float tensor, resized to the config's size and normalised with its mean/std.

    For 1-channel models trained on light-on-dark digits (MNIST), ``invert="auto"`` flips images whose
    border is bright, so a dark digit photographed on white paper is read the MNIST way.
    """
    img = to_model_mode(img, config.in_channels)
    h, w = config.image_size
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=None)
    pixels = np.asarray(img, dtype=np.uint8)
    flip = border_is_bright(pixels) if invert == "auto" and config.in_channels == 1 else invert is True
    if flip:
        pixels = 255 - pixels
    return normalise(torch.from_numpy(pixels.copy()), config)


def normalise(pixels: Tensor, config: ViTConfig) -> Tensor:
    """uint8 pixels (H, W) or (H, W, C) or (B, C, H, W) → floats in [0, 1], then (x − mean) / std per channel."""
    x = pixels.float() / 255.0
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3 and x.shape[-1] == config.in_channels and x.shape[0] != config.in_channels:
        x = x.permute(2, 0, 1)
    shape = (-1, 1, 1)
    mean = torch.tensor(config.mean).view(shape)
    std = torch.tensor(config.std).view(shape)
    return (x - mean) / std


def load_image(path: str | Path, config: ViTConfig, invert: str | bool = "auto") -> Tensor:
    """Read an image file into a (C, H, W) tensor ready for a model built from ``config``."""
    return image_to_tensor(open_image(path), config, invert)
