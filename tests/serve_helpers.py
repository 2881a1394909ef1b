"""A real `vitlens serve` process on loopback for the tests, and bundled digits as PNG files."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from vitlens.data.bundled import bundled_mnist


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(checkpoint: Path, *args: str, timeout: float = 60.0) -> Iterator[str]:
    """Start ``python -m vitlens serve CHECKPOINT`` on a free loopback port; yield its base URL; stop it."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vitlens", "serve", str(checkpoint), "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}: {proc.stdout.read().decode()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /healthz in time")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# A 7 drawn stroke by stroke in canvas pixels (280 × 280): the top bar, then the diagonal down.
SEVEN = [[(80, 70), (120, 68), (160, 66), (200, 66)],
         [(200, 66), (185, 110), (168, 150), (150, 195), (135, 230)]]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def draw_strokes(page: Any, strokes: list[list[tuple[int, int]]], canvas: str = "#canvas") -> None:
    """Draw on the page's canvas with the mouse, one stroke (press, moves, release) after another."""
    box = page.locator(canvas).bounding_box()
    for stroke in strokes:
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
        page.mouse.up()


def digit_png(index: int, split: str = "test") -> tuple[bytes, int]:
    """(PNG bytes, label) of a bundled MNIST digit."""
    images, labels = bundled_mnist()[split]
    buffer = io.BytesIO()
    Image.fromarray(images[index]).save(buffer, format="PNG")
    return buffer.getvalue(), int(labels[index])
