"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (+ ``training_state.pt`` for runs).

Every file is written to a temporary name in the same folder, flushed to disk and renamed into
place, so a crash never leaves a half-written file. Nothing is ever unpickled from untrusted
files: weights are safetensors, configs JSON, and the training state is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vitlens.config import ConfigError, ViTConfig
from vitlens.model.vit import VisionTransformer

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "training_state.pt"


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete or inconsistent; the message names the file and the fix."""


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def checkpoint_config(config: ViTConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``config.json`` contents: the model, how to preprocess its inputs, and its classes."""
    from vitlens import __version__

    data: dict[str, Any] = {
        "model": config.to_dict(),
        "preprocessing": {
            "image_size": list(config.image_size), "channels": config.in_channels, "mean": list(config.mean or ()),
            "std": list(config.std or ()), "resize": "bilinear",
            "invert": "auto" if config.in_channels == 1 else False,
        },
        "class_names": config.class_names,
        "vitlens_version": __version__,
    }
    data.update(extra or {})
    return data


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


def save_model(folder: str | Path, model: VisionTransformer, extra: dict[str, Any] | None = None,
               metadata: dict[str, str] | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``folder`` (atomically)."""
    folder = Path(folder)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS, lambda p: save_file(state, str(p), metadata=metadata or {}))
    text = json.dumps(checkpoint_config(model.config, extra), indent=2) + "\n"
    atomic_write(folder / CONFIG, lambda p: _write_text(p, text))
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG
    if not Path(folder).is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: a checkpoint folder needs {CONFIG} and {WEIGHTS}")
    try:
        data = json.loads(path.read_text())
        ViTConfig.from_dict(data["model"])
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as err:
        raise CheckpointError(f"{path} is not a valid vitlens checkpoint config: {err}") from err
    return data


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> VisionTransformer:
    """The model stored in a checkpoint folder, in eval mode."""
    folder = Path(folder)
    config = ViTConfig.from_dict(read_config(folder)["model"])
    path = folder / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the checkpoint has a config but no weights")
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err}); the file may be truncated") from err
    model = VisionTransformer(config).to(device)
    expected = model.state_dict()
    problems = [k for k in expected if k not in state] + [k for k in state if k not in expected]
    problems += [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                 if k in state and state[k].shape != v.shape]
    if problems:
        raise CheckpointError(
            f"the weights in {path} do not fit its {CONFIG} (keys or shapes differ: {problems[:5]}); "
            f"the two files come from different models — restore the matching pair"
        )
    model.load_state_dict(state)
    return model.eval()


def weights_metadata(folder: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(Path(folder) / WEIGHTS), framework="pt") as f:
        return dict(f.metadata() or {})
