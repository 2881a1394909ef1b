"""In-memory image datasets and `load_data`, which reads any supported source by a short spec.

Specs: ``mnist5k`` (the bundled sample, the default), ``mnist:DIR``, ``fashion-mnist:DIR``,
``kmnist:DIR`` (IDX files), ``cifar10:PATH`` (batches folder or the original archive), ``folder:DIR``
(class subfolders, with ``train/`` and ``test/`` inside or split 90/10), or a bare path whose kind
is recognised from its files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vitlens.data import cifar
from vitlens.data.bundled import bundled_mnist
from vitlens.data.errors import DataError
from vitlens.data.folder import class_folders, read_image_folder
from vitlens.data.idx import read_idx_pair
from vitlens.preprocess import resize_images

DIGITS = [str(d) for d in range(10)]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
KMNIST = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
IDX_CLASSES = {"mnist": DIGITS, "fashion-mnist": FASHION, "kmnist": KMNIST}
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class ImageDataset:
    """Images as uint8 (N, C, H, W), labels as int64 (N,), and the class names."""

    images: Tensor
    labels: Tensor
    class_names: list[str]
    name: str = ""

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != torch.uint8:
            raise DataError(f"dataset {self.name}: images must be uint8 (N, C, H, W), got {self.images.dtype} "
                            f"{tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise DataError(f"dataset {self.name}: {len(self.images)} images but {len(self.labels)} labels")
        if len(self.labels) and int(self.labels.max()) >= len(self.class_names):
            raise DataError(f"dataset {self.name}: label {int(self.labels.max())} but only "
                            f"{len(self.class_names)} class names")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.images.shape[2], self.images.shape[3])

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def subset(self, indices: Tensor | np.ndarray | list[int]) -> ImageDataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageDataset(self.images[idx], self.labels[idx], self.class_names, self.name)

    def resized(self, size: tuple[int, int], chunk: int = 4096) -> ImageDataset:
        """The images resized to ``size`` (H, W) by `resize_images`; ``self`` when they already have it.
        A model's input size rules: data of another size is resized to it."""
        size = (int(size[0]), int(size[1]))
        if self.image_size == size:
            return self
        images = torch.cat([resize_images(x, size) for x in self.images.split(chunk)])
        return ImageDataset(images, self.labels, self.class_names, self.name)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the pixels scaled to [0, 1] (for a config's normalisation)."""
        x = self.images.float().div_(255).transpose(0, 1).reshape(self.channels, -1)
        return tuple(x.mean(1).tolist()), tuple(x.std(1).clamp_min(1e-3).tolist())


def _dataset(images: np.ndarray, labels: np.ndarray, names: list[str], name: str) -> ImageDataset:
    if images.ndim == 3:
        images = images[:, None]
    return ImageDataset(torch.from_numpy(np.array(images, copy=True)), torch.from_numpy(labels.astype(np.int64)),
                        names, name)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem, folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder} has no {stem}(.gz): run `vitlens data download` or point to the folder holding it")


def load_idx_folder(folder: str | Path, kind: str = "mnist") -> dict[str, ImageDataset]:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist")
    out = {}
    for split, (images, labels) in IDX_FILES.items():
        x, y = read_idx_pair(_find(folder, images), _find(folder, labels))
        out[split] = _dataset(x, y, IDX_CLASSES.get(kind, DIGITS), f"{kind}/{split}")
    return out


def load_cifar10(path: str | Path) -> dict[str, ImageDataset]:
    path = Path(path).expanduser()
    if path.is_dir() and (path / "cifar-10-python.tar.gz").is_file() and not (path / "cifar-10-batches-py").is_dir():
        path = path / "cifar-10-python.tar.gz"
    return {split: _dataset(*cifar.read_cifar10(path, split), cifar.CLASSES, f"cifar10/{split}")
            for split in ("train", "test")}


def load_folder(root: str | Path, image_size: tuple[int, int], channels: int,
                test_fraction: float = 0.1, seed: int = 0) -> dict[str, ImageDataset]:
    root = Path(root).expanduser()
    test_dir = next((root / n for n in ("test", "val", "valid") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        x, y, names = read_image_folder(root / "train", image_size, channels)
        tx, ty, _ = read_image_folder(test_dir, image_size, channels, names)
        return {"train": _dataset(x, y, names, f"{root.name}/train"),
                "test": _dataset(tx, ty, names, f"{root.name}/{test_dir.name}")}
    x, y, names = read_image_folder(root, image_size, channels)
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: max(1, round(test_fraction * (y == c).sum()))]
                           for c in range(len(names))])
    train = np.setdiff1d(np.arange(len(y)), test)
    full = _dataset(x, y, names, root.name)
    return {"train": full.subset(train), "test": full.subset(np.sort(test))}


def load_data(
    spec: str | None = None, image_size: tuple[int, int] | None = None, channels: int = 1
) -> dict[str, ImageDataset]:
    """{"train": …, "test": …} for a data spec (see the module docstring), resized to ``image_size``
    (a model's input size) when given; without it each source keeps its own size and image folders
    are read at 28×28. ``channels`` is used only for image folders, whose files can have any mode."""
    datasets = _load(spec or "mnist5k", image_size or (28, 28), channels)
    return {split: data.resized(image_size) for split, data in datasets.items()} if image_size else datasets


def _load(spec: str, image_size: tuple[int, int], channels: int) -> dict[str, ImageDataset]:
    if spec == "mnist5k":
        return {split: _dataset(x, y, DIGITS, f"mnist5k/{split}") for split, (x, y) in bundled_mnist().items()}
    kind, sep, rest = spec.partition(":")
    if sep and kind in IDX_CLASSES:
        return load_idx_folder(rest, kind)
    if sep and kind == "cifar10":
        return load_cifar10(rest)
    if sep and kind == "folder":
        return load_folder(rest, image_size, channels)
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(
            f"data {spec!r} not found: use mnist5k (bundled), mnist:DIR, fashion-mnist:DIR, kmnist:DIR, "
            f"cifar10:PATH, folder:DIR, or an existing path"
        )
    if path.is_file() or (path / "cifar-10-batches-py").is_dir() or (path / "data_batch_1").is_file() \
            or (path / "cifar-10-python.tar.gz").is_file():
        return load_cifar10(path)
    if any((path / f"train-images-idx3-ubyte{s}").is_file() for s in ("", ".gz")):
        return load_idx_folder(path, "fashion-mnist" if "fashion" in path.name.lower() else "mnist")
    class_folders(path)
    return load_folder(path, image_size, channels)
