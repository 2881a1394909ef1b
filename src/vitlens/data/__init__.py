"""Data: bundled MNIST sample, IDX / CIFAR-10 / image-folder readers, explicit downloads, augmentation."""

from vitlens.data.datasets import ImageDataset, load_data
from vitlens.data.errors import DataError

__all__ = ["DataError", "ImageDataset", "load_data"]
