"""Attention over the patch grid, drawn on the model's input image as a PNG (PIL only: fast enough per request)."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw
from torch import Tensor


def input_picture(image: Tensor) -> Image.Image:
    """A (C, H, W) image with values in [0, 1] → an RGB PIL image."""
    pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).convert("RGB")


def heatmap_png(image: Tensor, weights: Tensor, grid: tuple[int, int], size: int = 224, alpha: float = 0.6,
                cmap: str = "inferno") -> bytes:
    """PNG bytes: ``image`` (C, H, W) in [0, 1] with ``weights`` (rows·cols,) over its patches, scaled to
    their maximum, blended on top and the patch grid drawn."""
    rows, cols = grid
    base = enlarged(input_picture(image), size)
    out_size = base.size
    w = weights.double().reshape(rows, cols).numpy()
    w = w / w.max() if w.max() > 0 else w
    colours = (colormaps[cmap](w)[..., :3] * 255).astype(np.uint8)
    overlay = Image.fromarray(colours).resize(out_size, Image.Resampling.NEAREST)
    picture = Image.blend(base, overlay, alpha)
    draw = ImageDraw.Draw(picture)
    for r in range(1, rows):
        y = round(r * out_size[1] / rows)
        draw.line([(0, y), (out_size[0], y)], fill=(90, 90, 90), width=1)
    for c in range(1, cols):
        x = round(c * out_size[0] / cols)
        draw.line([(x, 0), (x, out_size[1])], fill=(90, 90, 90), width=1)
    return encode_png(picture)


def png_bytes(image: Tensor, size: int = 224) -> bytes:
    """The model's input (C, H, W) in [0, 1], enlarged to ``size`` pixels, as PNG bytes."""
    return encode_png(enlarged(input_picture(image), size))


def enlarged(picture: Image.Image, size: int) -> Image.Image:
    """Scaled (nearest neighbour, pixels stay crisp) so that the longer side is ``size``."""
    scale = size / max(picture.size)
    return picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                          Image.Resampling.NEAREST)


def encode_png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
