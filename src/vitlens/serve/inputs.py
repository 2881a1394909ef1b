"""Request bodies → images, with a specific 4xx answer for every way an upload can be wrong.

Accepted: ``multipart/form-data`` with the image in a ``file`` field (and optionally ``top_k``),
``application/json`` ``{"image": "<base64 or data: URL>", "top_k": 3}``, or the raw image bytes
with an ``image/*`` or ``application/octet-stream`` content type.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

RAW_TYPES = ("application/octet-stream",)
FORM_TYPE, JSON_TYPE = "multipart/form-data", "application/json"


class RequestError(Exception):
    """A request the server will not run; ``status`` is the 4xx HTTP code, the message says why and what to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 10 * 1024 * 1024  # 10 MiB
    max_pixels: int = 25_000_000  # 5,000 × 5,000: larger images are refused before decoding (decompression bombs)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_content_type(content_type: str | None) -> str:
    media = media_type(content_type)
    if media in (FORM_TYPE, JSON_TYPE, *RAW_TYPES) or media.startswith("image/"):
        return media
    shown = f"'{media}'" if media else "none"
    raise RequestError(415, f"content type {shown} is not accepted: send multipart/form-data with the image in a "
                            "'file' field, application/json {\"image\": \"<base64>\"}, or the raw bytes as image/png")


def parse_json_body(body: bytes) -> tuple[bytes, Any]:
    """A JSON body → (image bytes, top_k or None)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RequestError(400, f"the body is not valid JSON ({err}); send {{\"image\": \"<base64>\"}}") from None
    if not isinstance(data, dict) or "image" not in data:
        raise RequestError(422, "the JSON body must be an object with an 'image' field holding the base64 image")
    text = data["image"]
    if not isinstance(text, str):
        raise RequestError(422, f"'image' must be a base64 string, got {type(text).__name__}")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise RequestError(400, f"'image' is not valid base64 ({err})") from None
    return raw, data.get("top_k")


def parse_top_k(value: Any, num_classes: int, default: int) -> int:
    """``top_k`` from a query, form field or JSON; 1 … number of classes."""
    if value is None or value == "":
        return min(default, num_classes)
    try:
        k = int(value)
        if isinstance(value, float | bool) or (isinstance(value, str) and str(k) != value.strip()):
            raise ValueError
    except (TypeError, ValueError):
        raise RequestError(422, f"top_k must be a whole number from 1 to {num_classes}, got {value!r}") from None
    if not 1 <= k <= num_classes:
        raise RequestError(422, f"top_k must be from 1 to {num_classes} (the model's number of classes), got {k}")
    return k


def decode_image(data: bytes, limits: Limits) -> Image.Image:
    """Image bytes → a fully decoded PIL image; sizes are checked from the header before decoding."""
    if not data:
        raise RequestError(400, "the image is empty (0 bytes): send a PNG, JPEG or other image file")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise RequestError(413, f"image refused: {err}") from None
    except UnidentifiedImageError:
        raise RequestError(400, f"not an image: the {len(data):,} bytes are in no image format this server reads; "
                                "send a PNG, JPEG, GIF, BMP, TIFF or WebP file") from None
    except Exception as err:  # a header PIL recognises but cannot parse
        raise RequestError(400, f"the image header cannot be read ({err}): is the file corrupt?") from None
    width, height = img.size
    if width * height > limits.max_pixels:
        raise RequestError(413, f"image is {width}×{height} = {width * height:,} pixels, over this server's limit of "
                                f"{limits.max_pixels:,} (decompression-bomb guard): send a smaller image")
    if width == 0 or height == 0:
        raise RequestError(400, f"image has no pixels ({width}×{height})")
    try:
        img.load()
    except Exception as err:  # any decoder failure is the upload's fault, never a server error
        raise RequestError(400, f"the {img.format or 'image'} file could not be decoded ({err}): "
                                "is it truncated or corrupt?") from None
    return img
