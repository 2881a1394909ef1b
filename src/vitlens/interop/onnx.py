"""ONNX export with a dynamic batch axis, checked against onnxruntime when it is installed.

Needs the ``onnx`` extra (``pip install vitlens[onnx]``: onnx, onnxscript, onnxruntime). The graph
takes normalised images ``images`` (batch, C, H, W) and returns ``logits`` (batch, K); the model's
config (with its preprocessing and class names) is stored in the file's metadata as
``vitlens_config``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import torch

from vitlens.checkpoint import checkpoint_config
from vitlens.interop.common import InteropError
from vitlens.model.vit import VisionTransformer


def export_onnx(model: VisionTransformer, path: str | Path, check: bool = True, atol: float = 1e-4) -> float | None:
    """Write ``model`` as ONNX to ``path``; with ``check``, compare onnxruntime with PyTorch and raise
    if they differ by more than ``atol``. Returns that largest difference (None when not checked)."""
    try:
        import onnx
    except ImportError as err:
        raise InteropError("ONNX export needs the onnx extra: pip install 'vitlens[onnx]'") from err
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config
    was_training, checks = model.training, model.check_inputs
    model.eval()
    model.check_inputs = False  # data-dependent checks cannot be traced; the graph takes any batch size
    example = torch.zeros(2, config.in_channels, *config.image_size)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(model, (example,), str(path), input_names=["images"], output_names=["logits"],
                              dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, dynamo=True)
    finally:
        model.train(was_training)
        model.check_inputs = checks
    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = "vitlens_config", json.dumps(checkpoint_config(config))
    onnx.save(graph, str(path))
    if not check:
        return None
    difference = onnx_difference(model, path)
    if difference is not None and difference > atol:
        raise InteropError(f"onnxruntime output differs from PyTorch by {difference:.2e} (> {atol}) in {path}")
    return difference


def onnx_difference(model: VisionTransformer, path: str | Path, batch_sizes: tuple[int, ...] = (1, 5)) -> float | None:
    """Largest |onnxruntime − PyTorch| over random batches, or None when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    config = model.config
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    model.eval()
    for b in batch_sizes:
        x = torch.randn(b, config.in_channels, *config.image_size, generator=generator)
        with torch.inference_mode():
            expected = model(x).float().numpy()
        got = session.run(["logits"], {"images": x.numpy()})[0]
        worst = max(worst, float(abs(got - expected).max()))
    return worst
