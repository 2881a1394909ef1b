"""Images from files (any PIL-readable format, mode and size) → normalised tensors for a config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from vitlens.config import ViTConfig

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs (PIL raises above 2× this)
MNIST_SIZE = 28  # MNIST's frame: a digit in a 20×20 box, centred by its centre of mass in 28×28


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


def fit_digit(pixels: np.ndarray, size: tuple[int, int] = (28, 28), box: int = 20) -> np.ndarray:
    """MNIST's own normalisation for a light-on-dark digit: crop to the ink, scale the longer side to
    ``box`` pixels keeping the aspect ratio, and centre the result by its centre of mass."""
    ink = pixels > max(30, int(pixels.max()) // 4)
    if not ink.any():
        return np.asarray(Image.fromarray(pixels).resize(size[::-1], Image.Resampling.BILINEAR))
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = pixels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    digit = np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.LANCZOS), dtype=np.float64)
    total = digit.sum() or 1.0
    cy, cx = (digit.sum(1) @ np.arange(h)) / total, (digit.sum(0) @ np.arange(w)) / total
    out = np.zeros(size, dtype=np.float64)
    top = int(np.clip(round(size[0] / 2 - cy), 0, size[0] - h))
    left = int(np.clip(round(size[1] / 2 - cx), 0, size[1] - w))
    out[top:top + h, left:left + w] = digit
    return np.clip(out, 0, 255).astype(np.uint8)


def resize_images(images: Tensor, size: tuple[int, int]) -> Tensor:
    """uint8 images (N, C, H, W) → uint8 (N, C, *size): bilinear, antialiased, rounded — how data sets
    are brought to a model's input size, and so how a single digit is brought there for prediction."""
    resized = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def image_to_tensor(img: Image.Image, config: ViTConfig, invert: str | bool = "auto", fit: str = "auto") -> Tensor:
    """A PIL image → (C, H, W) float tensor, resized to the config's size and normalised with its mean/std.

    For 1-channel models (trained on light-on-dark digits, as MNIST), ``invert="auto"`` flips images
    whose border is bright, so a dark digit written on white paper is read the MNIST way; and
    ``fit="auto"`` brings images of another size than the model's the way the training digits came:
    into MNIST's 28×28 frame (`fit_digit`, unless already 28×28), then `resize_images` to the model's
    size. ``fit="resize"`` always resizes the whole image.
    """
    img = to_model_mode(img, config.in_channels)
    h, w = config.image_size
    pixels = np.asarray(img, dtype=np.uint8)
    grey = config.in_channels == 1
    if grey and (invert is True or (invert == "auto" and border_is_bright(pixels))):
        pixels = 255 - pixels
    if pixels.shape[:2] != (h, w):
        if grey and fit == "auto":
            if pixels.shape[:2] != (MNIST_SIZE, MNIST_SIZE):
                pixels = fit_digit(pixels, (MNIST_SIZE, MNIST_SIZE))
            pixels = resize_images(torch.from_numpy(pixels.copy())[None, None], (h, w))[0, 0].numpy()
        else:
            pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR), dtype=np.uint8)
    return normalise(torch.from_numpy(pixels.copy()), config)


def normalise(pixels: Tensor, config: ViTConfig) -> Tensor:
    """uint8 pixels (H, W) or (H, W, C) or (B, C, H, W) → floats in [0, 1], then (x − mean) / std per channel."""
    x = pixels.float() / 255.0
    if x.ndim == 2:
        x = x[None]
    elif x.ndim == 3 and x.shape[-1] == config.in_channels and x.shape[0] != config.in_channels:
        x = x.permute(2, 0, 1)
    return standardise(x, config)


def _channel_stats(x: Tensor, config: ViTConfig) -> tuple[Tensor, Tensor]:
    """The config's mean and std as (C, 1, 1) tensors on x's device and dtype."""
    def as_channels(values: tuple[float, ...] | None) -> Tensor:
        return torch.tensor(values, device=x.device, dtype=x.dtype).view(-1, 1, 1)
    return as_channels(config.mean), as_channels(config.std)


def standardise(x: Tensor, config: ViTConfig) -> Tensor:
    """Floats in [0, 1], (…, C, H, W) → (x − mean) / std per channel, as the config says."""
    mean, std = _channel_stats(x, config)
    return (x - mean) / std


def unstandardise(x: Tensor, config: ViTConfig) -> Tensor:
    """The inverse of `standardise`: model inputs back to pixels in [0, 1] (for display)."""
    mean, std = _channel_stats(x, config)
    return x * std + mean


def load_image(path: str | Path, config: ViTConfig, invert: str | bool = "auto", fit: str = "auto") -> Tensor:
    """Read an image file into a (C, H, W) tensor ready for a model built from ``config``."""
    return image_to_tensor(open_image(path), config, invert, fit)
