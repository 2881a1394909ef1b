"""Use a trained model: load a checkpoint, preprocess images the way its config says, predict top-k."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from vitlens.checkpoint import load_model
from vitlens.data.errors import DataError
from vitlens.data.folder import IMAGE_SUFFIXES
from vitlens.model.vit import VisionTransformer
from vitlens.preprocess import image_to_tensor, load_image


def load(checkpoint: str | Path, device: str | torch.device = "cpu") -> VisionTransformer:
    """A trained model from a checkpoint folder (``config.json`` + ``model.safetensors``), in eval mode."""
    return load_model(checkpoint, device)


@dataclass
class Prediction:
    source: str
    top: list[tuple[str, float]]  # (class name, probability), most likely first
    probabilities: list[float]

    @property
    def label(self) -> str:
        return self.top[0][0]

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "label": self.label,
                "top": [{"class": c, "probability": p} for c, p in self.top], "probabilities": self.probabilities}


def expand_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the image files inside any folder (sorted)."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"folder {path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            paths.extend(found)
        else:
            paths.append(path)
    return paths


TopK = list[tuple[str, float]]


def top_classes(probabilities: Tensor, names: list[str], k: int) -> TopK:
    """One image's probabilities (K,) → the k most likely (class name, probability), most likely first
    (k is clamped to 1 … K)."""
    p, idx = probabilities.topk(max(1, min(k, probabilities.numel())))
    return [(names[i], float(v)) for v, i in zip(p.tolist(), idx.tolist(), strict=True)]


@torch.inference_mode()
def predict_tensors(model: VisionTransformer, images: Tensor, top_k: int = 3) -> list[tuple[TopK, list[float]]]:
    """Normalised images (B, C, H, W) → per image the top-k (class, probability) and all probabilities."""
    probs = model(images.to(next(model.parameters()).device)).float().softmax(-1).cpu()
    names = model.config.class_labels
    return [(top_classes(row, names, top_k), row.tolist()) for row in probs]


def predict(model: VisionTransformer | str | Path, images: Iterable[str | Path | Image.Image], top_k: int = 3,
            invert: str | bool = "auto", fit: str = "auto", batch_size: int = 256) -> list[Prediction]:
    """Predict image files, folders of images or PIL images with a model or a checkpoint folder."""
    net = model if isinstance(model, VisionTransformer) else load(model)
    items: list[tuple[str, Tensor]] = []
    for item in images:
        if isinstance(item, Image.Image):
            items.append(("<image>", image_to_tensor(item, net.config, invert, fit)))
        else:
            items.extend((str(p), load_image(p, net.config, invert, fit)) for p in expand_paths([item]))
    results = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        batch = torch.stack([t for _, t in chunk])
        for (source, _), (top, probs) in zip(chunk, predict_tensors(net, batch, top_k), strict=True):
            results.append(Prediction(source, top, probs))
    return results
