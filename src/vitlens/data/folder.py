"""A folder of images with one subfolder per class (``root/cat/001.jpg``, ``root/dog/…``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vitlens.data.errors import DataError
from vitlens.preprocess import ImageLoadError, open_image, to_model_mode

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def class_folders(root: Path) -> list[Path]:
    """The class subfolders of ``root``, sorted by name (their order gives the class indices)."""
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class subfolders: put each class's images in root/<class name>/")
    return folders


def read_image_folder(
    root: str | Path, image_size: tuple[int, int], channels: int, class_names: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All images of a class-per-subfolder tree, converted and resized: (N, C, H, W) uint8, labels, names.

    ``class_names`` fixes the class order (e.g. the test folder must follow the train folder's).
    """
    root = Path(root)
    folders = {p.name: p for p in class_folders(root)}
    names = class_names or sorted(folders)
    unknown = sorted(set(folders) - set(names))
    if unknown:
        raise DataError(f"{root} has class folders {unknown} that the training classes {names} do not have")
    images, labels = [], []
    for index, name in enumerate(names):
        folder = folders.get(name)
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if folder else []
        if not files:
            raise DataError(f"class folder {root / name} is empty: add images (PNG, JPEG, …) or remove the folder")
        for file in files:
            try:
                img = to_model_mode(open_image(file), channels)
            except ImageLoadError as err:
                raise DataError(f"{err}; remove or replace {file}") from err
            if img.size != (image_size[1], image_size[0]):
                img = img.resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
            pixels = np.asarray(img, dtype=np.uint8)
            images.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
            labels.append(index)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names
