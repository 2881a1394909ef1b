"""CIFAR-10 "python version" batches, read without executing pickled code.

The batches are Python pickles of ``{b"data": uint8 (10000, 3072), b"labels": [...]}``. They are
read with an unpickler that only admits the numpy array constructors those files use, so a
tampered file cannot run code. The original archive ``cifar-10-python.tar.gz`` can be given
directly; its batches are read from the tar without extracting anything to disk.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from vitlens.data.errors import DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"), ("builtins", "bytearray"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR batch")


def parse_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch → images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    try:
        batch = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise DataError(f"{source} is not a CIFAR-10 python batch ({err}); download it again") from err
    if pixels.ndim != 2 or pixels.shape[1] != 3072 or len(pixels) != len(labels):
        raise DataError(f"{source} has data of shape {pixels.shape} and {len(labels)} labels; expected (N, 3072) and N")
    return pixels.reshape(-1, 3, 32, 32), labels


def read_cifar10(source: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of the ``train`` or ``test`` split from a batches folder or the original archive."""
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    source = Path(source)
    parts = []
    if source.is_file() and source.name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(source) as tar:
                members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
                for name in names:
                    if name not in members:
                        raise DataError(f"{source} has no {name}: is it cifar-10-python.tar.gz?")
                    handle = tar.extractfile(members[name])
                    assert handle is not None
                    parts.append(parse_batch(handle.read(), f"{source}:{name}"))
        except (tarfile.TarError, OSError, EOFError) as err:
            raise DataError(f"{source} is not a readable tar archive ({err}); download it again") from err
    else:
        folder = source / "cifar-10-batches-py" if (source / "cifar-10-batches-py").is_dir() else source
        for name in names:
            path = folder / name
            if not path.is_file():
                raise DataError(f"CIFAR-10 batch {path} is missing: the folder needs {', '.join(names)}")
            parts.append(parse_batch(path.read_bytes(), str(path)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
