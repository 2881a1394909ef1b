"""Explicit downloads of the standard data sets, with known sizes and sha256 checks.

Nothing here runs unless asked (`vitlens data download NAME`). Each file is streamed to a hidden
``.part`` file beside its destination, checked for size and sha256, and only then renamed into
place; a failed or interrupted download leaves nothing behind and is retried.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from vitlens.data.errors import DataError


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    base_url: str
    files: tuple[RemoteFile, ...]


MANIFESTS = {
    "mnist": Manifest("https://ossci-datasets.s3.amazonaws.com/mnist/", (
        RemoteFile("train-images-idx3-ubyte.gz", 9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        RemoteFile("train-labels-idx1-ubyte.gz", 28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        RemoteFile("t10k-images-idx3-ubyte.gz", 1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    )),
    "fashion-mnist": Manifest("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (
        RemoteFile("train-images-idx3-ubyte.gz", 26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        RemoteFile("train-labels-idx1-ubyte.gz", 29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        RemoteFile("t10k-images-idx3-ubyte.gz", 4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    )),
    "cifar10": Manifest("https://www.cs.toronto.edu/~kriz/", (
        RemoteFile("cifar-10-python.tar.gz", 170498071, "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    )),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, file: RemoteFile, dest: Path, timeout: float, on_bytes: Callable[[int], None]) -> None:
    part = dest.with_name(f".{dest.name}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as out:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                size += len(chunk)
                if size > file.size:
                    raise DataError(f"{url} sent more than the expected {file.size} bytes")
                digest.update(chunk)
                out.write(chunk)
                on_bytes(len(chunk))
        if size != file.size:
            raise DataError(f"{url} sent {size} bytes, expected {file.size}")
        if digest.hexdigest() != file.sha256:
            raise DataError(f"{url} has sha256 {digest.hexdigest()}, expected {file.sha256}")
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)


def download(
    name: str,
    folder: str | Path,
    base_url: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    manifest: Manifest | None = None,
    progress: bool = True,
) -> list[Path]:
    """Download data set ``name`` (mnist, fashion-mnist, cifar10) into ``folder``; return the file paths.

    Files already present with the right sha256 are kept. ``base_url`` points at a mirror.
    """
    if manifest is None:
        if name not in MANIFESTS:
            raise DataError(f"unknown data set {name!r}: downloadable are {', '.join(MANIFESTS)}")
        manifest = MANIFESTS[name]
    base = base_url or manifest.base_url
    base = base if base.endswith("/") else base + "/"
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    paths = []
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  disable=not progress) as bar:
        for file in manifest.files:
            dest = folder / file.name
            paths.append(dest)
            if dest.is_file() and dest.stat().st_size == file.size and sha256_of(dest) == file.sha256:
                continue
            task = bar.add_task(file.name, total=file.size)
            for attempt in range(1, retries + 1):
                bar.reset(task)
                try:
                    _fetch(base + file.name, file, dest, timeout, partial(bar.advance, task))
                    break
                except (urllib.error.URLError, OSError, DataError) as err:
                    if attempt == retries:
                        raise DataError(
                            f"could not download {base + file.name} after {retries} tries: {err}. "
                            f"Check the network or pass --base-url for a mirror; nothing partial was kept"
                        ) from err
                    time.sleep(backoff * attempt)
    return paths
