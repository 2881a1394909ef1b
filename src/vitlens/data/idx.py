"""The IDX format of MNIST, Fashion-MNIST and KMNIST (raw or gzipped).

Header: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then one
big-endian uint32 per dimension; the data follow in C order.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from vitlens.data.errors import DataError

_TYPES: dict[int, str | type] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into an array of the shape its header gives."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file {path} does not exist")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DataError(f"{path} is not a readable gzip file ({err}); download it again") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise DataError(
            f"{path} is not an IDX file: wrong magic number {raw[:4].hex() or 'empty'} "
            f"(expected 0000 08 01 for labels or 0000 08 03 for images)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header is incomplete")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is truncated or padded: header says shape {shape} ({expected} bytes), "
            f"file holds {len(raw) - header} bytes of data; download it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def read_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) uint8 and labels (N,) int64 from an IDX image file and an IDX label file."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path} holds an array of shape {images.shape}, not images (N, H, W)")
    if labels.ndim != 1:
        raise DataError(f"{labels_path} holds an array of shape {labels.shape}, not labels (N,)")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels: "
            f"the files do not belong together"
        )
    return images, labels.astype(np.int64)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzipped when the name ends in .gz, with a fixed mtime)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0) if path.suffix == ".gz" else data)
