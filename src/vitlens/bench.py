"""Throughput benchmarks: vitlens side by side with the ViTs people would otherwise use.

For each config: images/s of a training step (forward + loss + backward + AdamW step) and of
inference (``torch.inference_mode``), the achieved GFLOP/s (FLOPs from `vitlens.info`; a training
step counts 3× the forward FLOPs) and its fraction of a matmul peak measured in the same run. With
``compare``, the same config is built in Hugging Face transformers and vit-pytorch (its ``vit.py``
imported by path, since the package ``__init__`` needs torchvision) when they are installed, and all
libraries are measured in interleaved rounds so that they see the same machine state; the best
round of each counts.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import operator
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from vitlens.config import ViTConfig, preset
from vitlens.info import count_macs
from vitlens.model.vit import VisionTransformer
from vitlens.training import cpu_has_bf16_matrix_units, resolve_precision

CONFIGS: dict[str, Callable[[], ViTConfig]] = {
    "mnist": lambda: preset("mnist"),
    # the reference config: 28×28, patch 4, D 64, depth 6, 4 heads
    "mnist_patch4": lambda: preset("mnist").replace(image_size=28, patch_size=4, name="mnist_patch4"),
    "vit_tiny_patch16_224": lambda: preset("vit_tiny_patch16_224"),
    "vit_small_patch16_224": lambda: preset("vit_small_patch16_224"),
}
DEFAULT_BATCH = {"mnist": 128, "mnist_patch4": 128, "vit_tiny_patch16_224": 32, "vit_small_patch16_224": 16}


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 2048, min_time: float = 0.5) -> float:
    """GFLOP/s of an n×n×n matrix product in ``dtype`` (2n³ FLOPs), best of the repeats. `run` measures the
    fp32 peak before and after the models and keeps the higher, so a noisy moment does not set it."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / seconds_per_call(lambda: a @ b, min_time) / 1e9


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seconds_per_call(fn: Callable[[], Any], min_time: float, warmup: int = 2) -> float:
    """The fastest of several timed repeats of ``fn`` (each repeat at least ``min_time`` / 3 long)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time / 3:
                break
        best = min(best, elapsed / calls)
    return best


def vit_pytorch_class(module: str = "vit", name: str = "ViT") -> Any:
    """A class from one vit-pytorch module, imported by path (the package ``__init__`` needs torchvision)."""
    spec = importlib.util.find_spec("vit_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / f"{module}.py"
    module_spec = importlib.util.spec_from_file_location(f"vit_pytorch_{module}", path)
    if module_spec is None or module_spec.loader is None:
        return None
    loaded = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(loaded)
    return getattr(loaded, name)


def build(library: str, config: ViTConfig) -> nn.Module | None:
    """The config as a model of ``library`` (vitlens, transformers, vit-pytorch); None if unavailable."""
    if library == "vitlens":
        model = VisionTransformer(config)
        model.check_inputs = False
        return model
    if library == "transformers":
        if importlib.util.find_spec("transformers") is None:
            return None
        import transformers

        from vitlens.interop.hf import config_to_hf

        hf_config = transformers.ViTConfig(**{k: v for k, v in config_to_hf(config).items()
                                              if k not in ("architectures", "model_type")})
        hf = transformers.ViTForImageClassification(hf_config)
        return _Logits(hf)
    if library == "vit-pytorch":
        vit_class = vit_pytorch_class()
        if vit_class is None:
            return None
        return vit_class(image_size=config.image_size, patch_size=config.patch_size, num_classes=config.num_classes,
                         dim=config.dim, depth=config.depth, heads=config.heads, mlp_dim=config.hidden_dim,
                         channels=config.in_channels, dim_head=config.head_dim)
    raise ValueError(f"unknown library {library!r}")


class _Logits(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


def measure(model: nn.Module, config: ViTConfig, batch: int, min_time: float,
            amp_dtype: torch.dtype | None = None, inference_model: nn.Module | None = None) -> dict[str, float]:
    """Images/s of a training step and of inference for one model. Training autocasts to ``amp_dtype``
    when given; inference runs ``inference_model`` (default ``model``): for bf16 a copy cast to bf16
    once, as one deploys a model, rather than autocast re-casting every weight on every call."""
    x = torch.randn(batch, config.in_channels, *config.image_size)
    y = torch.randint(0, config.num_classes, (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    autocast = functools.partial(torch.autocast, "cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)
    model.train()

    def train_step() -> None:
        with autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train_s = seconds_per_call(train_step, min_time)
    net = (model if inference_model is None else inference_model).eval()
    x_infer = x.to(amp_dtype or torch.float32)

    def infer() -> None:
        with torch.inference_mode():
            net(x_infer)

    infer_s = seconds_per_call(infer, min_time)
    return {"train_images_per_s": batch / train_s, "inference_images_per_s": batch / infer_s}


def _compiled(model: nn.Module) -> nn.Module:
    return cast(nn.Module, torch.compile(model))


def variants(libraries: list[str], precision: str, compile: bool) -> list[tuple[str, str, torch.dtype | None, bool]]:
    """(row label, library, autocast dtype, compiled) for every model a run measures. Peers run as their
    users would by default (eager fp32) and, with ``compile``, also compiled; vitlens adds a bf16 row
    (autocast in training, bf16 weights in inference) when ``precision`` resolves to bf16 (``auto``: CPUs
    with AMX bf16 units)."""
    amp = resolve_precision(precision, torch.device("cpu"))
    rows = []
    for lib in libraries:
        for dtype in ([None, amp] if lib == "vitlens" and amp is not None else [None]):
            for compiled in ([False, True] if compile else [False]):
                label = " ".join([lib] + (["bf16"] if dtype else []) + (["compiled"] if compiled else []))
                rows.append((label, lib, dtype, compiled))
    return rows


def run(names: list[str] | None = None, compare: bool = False, batch_size: int | None = None, rounds: int = 3,
        min_time: float = 1.0, precision: str = "fp32", compile: bool = False) -> dict[str, Any]:
    """Benchmark the named configs (default: all of `CONFIGS`); returns a JSON-ready report.

    ``precision`` (fp32 | bf16 | auto) adds a vitlens bf16 row (see `variants`) when it resolves to bf16;
    ``compile`` adds a ``torch.compile``d row for every library."""
    names = names or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown bench config(s) {unknown}; known: {', '.join(CONFIGS)}")
    libraries = ["vitlens", "transformers", "vit-pytorch"] if compare else ["vitlens"]
    rows = variants(libraries, precision, compile)
    peak = {"fp32": matmul_peak(torch.float32, min_time=min_time)}  # measured again at the end; the best counts
    results: list[dict[str, Any]] = []
    for name in names:
        config = CONFIGS[name]()
        batch = batch_size or DEFAULT_BATCH[name]
        forward_flops = 2 * sum(count_macs(config).values())
        built = {lib: build(lib, config) for lib in libraries}
        models: dict[str, tuple[nn.Module, nn.Module, torch.dtype | None]] = {}
        for label, lib, dtype, compiled in rows:
            if (model := built[lib]) is not None:
                deployed = copy.deepcopy(model).to(dtype) if dtype else model  # bf16 inference: bf16 weights
                models[label] = (_compiled(model) if compiled else model,
                                 _compiled(deployed) if compiled else deployed, dtype)
        best: dict[str, dict[str, float]] = {}
        for _ in range(rounds):  # interleaved: every model once per round
            for label, (model, deployed, dtype) in models.items():
                torch.manual_seed(0)
                got = measure(model, config, batch, min_time, dtype, deployed)
                for key, value in got.items():
                    best.setdefault(label, {})[key] = max(best.get(label, {}).get(key, 0.0), value)
        for label, lib, dtype, compiled in rows:
            if built[lib] is None:
                results.append({"config": name, "library": label, "skipped": "not installed"})
                continue
            numbers = best[label]
            results.append({
                "config": name, "library": label, "precision": "bf16" if dtype else "fp32", "compiled": compiled,
                "batch_size": batch, **numbers,
                "train_gflop_per_s": numbers["train_images_per_s"] * 3 * forward_flops / 1e9,
                "inference_gflop_per_s": numbers["inference_images_per_s"] * forward_flops / 1e9,
            })
    peak["fp32"] = max(peak["fp32"], matmul_peak(torch.float32, min_time=min_time))
    peak["bf16"] = matmul_peak(torch.bfloat16, min_time=min_time)
    for r in results:
        if "skipped" not in r:
            r["train_fraction_of_fp32_peak"] = r["train_gflop_per_s"] / peak["fp32"]
            r["inference_fraction_of_fp32_peak"] = r["inference_gflop_per_s"] / peak["fp32"]
            r["train_fraction_of_peak"] = r["train_gflop_per_s"] / peak[r["precision"]]
            r["inference_fraction_of_peak"] = r["inference_gflop_per_s"] / peak[r["precision"]]
    return {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "amx_bf16": cpu_has_bf16_matrix_units()},
        "matmul_peak_gflop_per_s": peak, "rounds": rounds, "results": results, "ratios": ratios(results),
        "peak_rss_mib": peak_rss_mib(),
    }


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every vitlens row ÷ the best eager peer of its config, and compiled vitlens ÷ the best compiled peer."""
    out = []
    measured = [r for r in results if "skipped" not in r]
    for ours in (r for r in measured if r["library"].startswith("vitlens")):
        for against_compiled in sorted({False, ours["compiled"]}):
            peers = [r for r in measured if r["config"] == ours["config"] and not r["library"].startswith("vitlens")
                     and r["compiled"] == against_compiled]
            if not peers:
                continue
            for key in ("train_images_per_s", "inference_images_per_s"):
                top = max(peers, key=operator.itemgetter(key))
                out.append({"config": ours["config"], "measure": key, "vitlens": ours["library"],
                            "vitlens_value": ours[key], "best_peer": top["library"], "best_peer_value": top[key],
                            "ratio": ours[key] / top[key]})
    return out


# ---------------------------------------------------------------------------- deployment: runtimes compared
def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0–100) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def runtimes(model: VisionTransformer, workdir: Path) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Ways to run a trained model for inference, each a function normalised images (B, C, H, W) → logits:
    PyTorch fp32, PyTorch with the weights cast to bf16, PyTorch with dynamic int8 quantisation of every
    Linear layer (weights int8, activations quantised per batch on the fly), and onnxruntime (fp32) when
    installed."""
    model.eval()

    def eager(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        def run_model(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return net(x)
        return run_model

    found = {"pytorch fp32": eager(model), "pytorch bf16": eager(copy.deepcopy(model).to(torch.bfloat16))}
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)
    found["pytorch int8 dynamic"] = eager(int8)
    if importlib.util.find_spec("onnxruntime") is not None:
        import onnxruntime as ort

        from vitlens.interop.onnx import export_onnx

        path = workdir / "model.onnx"
        export_onnx(model, path, check=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def run_onnx(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run(None, {"images": x.numpy()})[0])

        found["onnxruntime fp32"] = run_onnx
    return found


def deployment(model: VisionTransformer, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 128,
               latency_runs: int = 300, min_time: float = 1.0) -> dict[str, Any]:
    """Accuracy on (images, labels), agreement with fp32, throughput at ``batch_size`` and batch-1 latency
    (p50/p99 of ``latency_runs`` single-image calls) for each of `runtimes`; JSON-ready."""
    import tempfile

    checks, model.check_inputs = model.check_inputs, False  # time the network, not the input checks
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            found = runtimes(model, Path(tmp))
            reference: torch.Tensor | None = None
            for name, fn in found.items():
                probs = torch.cat([fn(images[i:i + 500]).float().softmax(-1) for i in range(0, len(images), 500)])
                if reference is None:
                    reference = probs
                batch = images[:batch_size]
                throughput = batch.shape[0] / seconds_per_call(functools.partial(fn, batch), min_time)
                one = images[:1]
                for _ in range(20):
                    fn(one)
                latencies = []
                for i in range(latency_runs):
                    x = images[i % len(images)][None]
                    start = time.perf_counter()
                    fn(x)
                    latencies.append((time.perf_counter() - start) * 1000)
                rows.append({
                    "runtime": name, "accuracy": int((probs.argmax(-1) == labels).sum()) / len(labels),
                    "agreement_with_fp32": int((probs.argmax(-1) == reference.argmax(-1)).sum()) / len(labels),
                    "max_probability_difference": float((probs - reference).abs().max()),
                    "images_per_s": throughput, "batch_size": batch.shape[0],
                    "latency_ms_p50": percentile(latencies, 50), "latency_ms_p99": percentile(latencies, 99),
                })
    finally:
        model.check_inputs = checks
    return {"benchmark": "deployment", "images": len(images), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "processor": platform.processor() or platform.machine(), "runtimes": rows}
