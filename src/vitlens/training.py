"""Training, evaluation and exact resume — a trainer you can read in one sitting.

Every source of randomness is a function of (seed, epoch) or (seed, step): the order of the
training images in an epoch, each step's augmentation and each step's dropout. The learning rate
is a function of the step. So a run stopped at any step and resumed from its checkpoint ends with
exactly the weights of an uninterrupted run (on CPU; bit-exact there).
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitlens.checkpoint import (
    STATE,
    CheckpointError,
    atomic_write,
    load_model,
    read_config,
    save_model,
    weights_metadata,
)
from vitlens.config import ViTConfig, load_config
from vitlens.data.augment import random_affine
from vitlens.data.datasets import ImageDataset, load_data
from vitlens.distributed import join, leave
from vitlens.model.vit import VisionTransformer
from vitlens.preprocess import standardise


@dataclass
class TrainConfig:
    """How to train. The defaults are the recipe for the bundled MNIST sample on a 2-core CPU."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    min_lr: float = 1e-5
    warmup_epochs: float = 2.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    clip_grad: float = 0.0  # max gradient norm; 0 = off (clipping at 1 or 5 slowed the mnist recipe)
    augment: str = "auto"  # auto | digits | crop_flip | none
    precision: str = "auto"  # auto | fp32 | bf16
    compile: str = "auto"  # auto | on | off — auto: long runs on a CUDA GPU or a CPU with a C++ compiler
    grad_checkpointing: bool = False  # recompute each block in backward: less memory, ~1/3 more compute
    seed: int = 0
    eval_batch_size: int = 500
    ema: float = 0.999  # decay of the weight average that is evaluated and saved; 0 = off (see WeightAverage)

    def __post_init__(self) -> None:
        if isinstance(self.compile, bool):  # runs saved before compile had an auto setting
            self.compile = "on" if self.compile else "off"
        if self.compile not in ("auto", "on", "off"):
            raise ValueError(f"compile must be auto, on or off, got {self.compile!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{"ema": 0.0, **{k: v for k, v in data.items() if k in known}})  # runs saved before EMA: off


@dataclass
class EvalResult:
    accuracy: float
    loss: float
    confusion: Tensor  # (K, K): rows true class, columns predicted
    class_names: list[str]

    def per_class(self) -> list[dict[str, float | str | int]]:
        c = self.confusion.double()
        tp = c.diag()
        precision = tp / c.sum(0).clamp_min(1)
        recall = tp / c.sum(1).clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        return [{"class": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                 "support": int(c[i].sum())} for i, name in enumerate(self.class_names)]

    def as_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "loss": self.loss, "per_class": self.per_class(),
                "confusion": self.confusion.tolist(), "class_names": self.class_names}


@dataclass
class TrainResult:
    model: VisionTransformer
    out_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}


def seconds_to_accuracy(history: list[dict[str, Any]], thresholds: Iterable[float]) -> dict[float, float | None]:
    """For each test-accuracy threshold, the ``time_s`` of the first evaluation in ``history`` that reached
    it (None if none did)."""
    return {t: next((r["time_s"] for r in history if r["test_accuracy"] >= t), None) for t in thresholds}


# ---------------------------------------------------------------------------- pieces
def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``auto``: bf16 on GPUs that have it and on CPUs with bf16 matrix units
    (AMX); fp32 elsewhere — on a CPU with only avx512_bf16 (the 2-core AMD EPYC this was measured on)
    bf16 autocast did not shorten an epoch of the mnist recipe, eager or compiled."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and cpu_has_bf16_matrix_units():
        return torch.bfloat16
    return None


# On the 2-core CPU a compiled step of the mnist preset took ~23 ms instead of ~30 ms, and compiling cost
# 3-8 s with inductor's kernel cache warm but ~38 s on a fresh machine (C++ builds): break-even on a cold
# cache is ~5,000 steps. The default mnist run (3,720 steps) therefore stays eager unless asked.
COMPILE_MIN_STEPS = 5000


def resolve_compile(setting: str, device: torch.device, steps: int) -> bool:
    """Whether to ``torch.compile`` a run of ``steps`` optimizer steps: ``on``/``off`` as given; ``auto``
    compiles runs of at least `COMPILE_MIN_STEPS` on a CUDA GPU, or on a CPU where inductor finds a C++
    compiler (``$CXX``, g++ or clang++) to build its kernels with."""
    if setting in ("on", "off"):
        return setting == "on"
    if steps < COMPILE_MIN_STEPS:
        return False
    if device.type == "cuda":
        return True
    compilers = [os.environ.get("CXX", ""), "g++", "clang++"]
    return device.type == "cpu" and any(name and shutil.which(name) for name in compilers)


def cpu_has_bf16_matrix_units() -> bool:
    """True on CPUs with AMX bf16 tiles (Intel Sapphire Rapids and later), where oneDNN's bf16 matmul
    runs several times faster than fp32."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    return bool(capabilities and capabilities().get("amx_bf16", False))


def fit_config_to_data(config: ViTConfig, data: ImageDataset) -> ViTConfig:
    """Adapt channels, classes and normalisation of a config to the data it trains on (the data is
    resized to the config's image size, not the other way round: see `ImageDataset.resized`)."""
    changes: dict[str, Any] = {}
    if data.channels != config.in_channels:
        mean, std = data.channel_stats()
        changes.update(in_channels=data.channels, mean=mean, std=std)
    if len(data.class_names) != config.num_classes or data.class_names != config.class_names:
        changes.update(num_classes=len(data.class_names), class_names=data.class_names)
    return config.replace(**changes) if changes else config


def default_augmentation(config: ViTConfig) -> str:
    return "digits" if config.in_channels == 1 else "crop_flip"


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on the weight matrices only: not on norms, biases, class token or positions."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        embedding = name.startswith(("class_token", "position_embedding"))
        (decay if p.ndim >= 2 and not embedding else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def learning_rate(step: int, total: int, warmup: int, tc: TrainConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then a cosine down to ``min_lr`` at ``total``."""
    if step < warmup:
        return tc.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return tc.min_lr + 0.5 * (tc.lr - tc.min_lr) * (1 + math.cos(math.pi * progress))


def to_unit(images_u8: Tensor, device: torch.device) -> Tensor:
    """uint8 (B, C, H, W) → floats in [0, 1] on ``device`` (standardisation comes after augmentation)."""
    return images_u8.to(device, non_blocking=True).float().div_(255)


@torch.inference_mode()
def evaluate(model: VisionTransformer, data: ImageDataset, batch_size: int = 500,
             device: str | torch.device | None = None) -> EvalResult:
    """Accuracy, mean loss and confusion matrix of ``model`` on ``data`` (resized to the model's input size)."""
    device = torch.device(device) if device else next(model.parameters()).device
    data = data.resized(model.config.image_size)
    was_training = model.training
    model.eval()
    k = model.config.num_classes
    confusion = torch.zeros(k, k, dtype=torch.long)
    total_loss = 0.0
    for start in range(0, len(data), batch_size):
        x = standardise(to_unit(data.images[start:start + batch_size], device), model.config)
        y = data.labels[start:start + batch_size].to(device)
        logits = model(x).float()
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        pred = logits.argmax(-1)
        confusion += torch.bincount((y * k + pred).cpu(), minlength=k * k).view(k, k)
    model.train(was_training)
    correct = int(confusion.diag().sum())
    return EvalResult(correct / max(1, len(data)), total_loss / max(1, len(data)), confusion, data.class_names)


# ---------------------------------------------------------------------------- weight average
M = TypeVar("M", bound=nn.Module)


class WeightAverage(Generic[M]):
    """An exponential moving average of a model's weights (Polyak averaging, as timm's ModelEma).

    After update n the average moves toward the trained weights w by 1 − βₙ with
    βₙ = min(decay, (1 + n) / (10 + n)) — TensorFlow's ExponentialMovingAverage warm-up, so early
    averages forget the random init fast. Only parameters are averaged (a ViT keeps no running
    statistics). The average is what is evaluated and saved: on the mnist recipe it reaches 95 / 97 %
    in about half the epochs of the trained weights and 98 % a few epochs sooner in 4 of 5 runs,
    and ends as accurate (README, "The recipe").
    """

    def __init__(self, model: M, decay: float) -> None:
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.decay = decay
        self._trained: list[Tensor] = list(model.parameters())
        self._average: list[Tensor] = list(self.model.parameters())

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the trained weights after optimizer step ``step`` (0-based)."""
        beta = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self._average, self._trained, 1.0 - beta)


# ---------------------------------------------------------------------------- checkpoints of runs
def _save_run(out: Path, model: VisionTransformer, average: WeightAverage[VisionTransformer] | None,
              optimizer: torch.optim.Optimizer, tc: TrainConfig, step: int, epoch: int,
              history: list[dict[str, Any]], data_spec: str) -> None:
    """model.safetensors gets the model that is evaluated (the weight average when there is one);
    the training state gets the optimizer and, with an average, the trained weights it averages."""
    meta = {"step": str(step), "epoch": str(epoch)}
    save_model(out, average.model if average else model, extra={"train": asdict(tc), "data": data_spec}, metadata=meta)
    state = {"step": step, "epoch": epoch, "optimizer": optimizer.state_dict(), "history": json.dumps(history)}
    if average:
        state["trained_weights"] = model.state_dict()
    atomic_write(out / STATE, lambda p: torch.save(state, p))


def _load_run(out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = read_config(out)
    path = out / STATE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: {out} holds a model but not a resumable training run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise CheckpointError(f"{path} cannot be read ({err}); the run cannot be resumed from it") from err
    if weights_metadata(out).get("step") != str(state["step"]):
        raise CheckpointError(f"{out}: model.safetensors and {STATE} are from different steps; restore a matching pair")
    return config, state


# ---------------------------------------------------------------------------- training
def train(
    model_config: ViTConfig | str = "mnist",
    data: str | dict[str, ImageDataset] | None = None,
    out_dir: str | Path = "runs/mnist",
    train_config: TrainConfig | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train a ViT and write a checkpoint folder after every epoch; return the model and metrics.

    ``data`` is a data spec (see `load_data`; default: the bundled MNIST sample) or a dict with
    ``train`` and ``test`` datasets. With ``resume=True`` the run in ``out_dir`` continues from its
    last checkpoint; its saved model and training configs are used and must match any given here.
    ``stop_after_steps`` stops (and saves) after that many optimizer steps in total, as Ctrl-C does.
    """
    out = Path(out_dir)
    tc = train_config or TrainConfig()
    data_spec = data if isinstance(data, str) else ("mnist5k" if data is None else "in-memory")
    start_step, history, optimizer_state = 0, [], None
    trained_weights: dict[str, Tensor] = {}  # on --resume with a weight average: the weights being trained
    if resume:
        saved, state = _load_run(out)
        saved_tc = TrainConfig.from_dict(saved.get("train", {}))
        if train_config is not None and asdict(train_config) != asdict(saved_tc):
            diff = {k: (v, asdict(saved_tc)[k]) for k, v in asdict(train_config).items() if asdict(saved_tc)[k] != v}
            raise CheckpointError(f"--resume: {out} was trained with other settings (given vs saved: {diff}); "
                                  f"resume with the run's own settings or start a new run in another folder")
        tc = saved_tc
        config = ViTConfig.from_dict(saved["model"])
        if not isinstance(model_config, str) and model_config.to_dict() != config.to_dict():
            raise CheckpointError(f"--resume: {out} holds a different model config; start a new run instead")
        data_spec = saved.get("data", data_spec) if data is None else data_spec
        start_step, history, optimizer_state = int(state["step"]), json.loads(state["history"]), state["optimizer"]
        trained_weights = state.get("trained_weights", {})
        if tc.ema > 0 and not trained_weights:
            raise CheckpointError(f"{out / STATE} has no trained_weights entry, which a run with ema > 0 needs; "
                                  f"restore the run's {STATE} or start a new run")
    else:
        existing = [name for name in ("model.safetensors", STATE, "metrics.jsonl") if (out / name).exists()]
        if existing:
            raise CheckpointError(f"{out} already holds a training run ({', '.join(existing)}); continue it with "
                                  f"--resume, or choose another --out folder — nothing was overwritten")
        config = load_config(model_config) if isinstance(model_config, str) else model_config
    datasets = data if isinstance(data, dict) else load_data(data_spec, config.image_size, config.in_channels)
    train_set, test_set = (datasets[split].resized(config.image_size) for split in ("train", "test"))
    config = fit_config_to_data(config, train_set)

    world, dev = join(device)
    if tc.batch_size % world.size:
        raise ValueError(f"batch size {tc.batch_size} (the global batch) is not divisible by {world.size} processes")
    local_batch = tc.batch_size // world.size
    torch.manual_seed(tc.seed)
    model = VisionTransformer(config).to(dev)
    model.set_gradient_checkpointing(tc.grad_checkpointing)
    average = WeightAverage(model, tc.ema) if tc.ema > 0 else None
    if resume:
        saved_model = load_model(out, dev).state_dict()
        if average:
            average.model.load_state_dict(saved_model)
        model.load_state_dict(trained_weights if average else saved_model)
    # The fused AdamW kernel measured ~25 % more training images/s on a 2-core CPU than the default.
    optimizer = torch.optim.AdamW(parameter_groups(model, tc.weight_decay), lr=tc.lr, betas=(0.9, 0.999),
                                  fused=dev.type in ("cpu", "cuda") or None)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    amp_dtype = resolve_precision(tc.precision, dev)
    augment = default_augmentation(config) if tc.augment == "auto" else tc.augment
    forward: Any = model
    if world.distributed:
        forward = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    steps_per_epoch = len(train_set) // tc.batch_size  # the last partial batch is dropped
    if steps_per_epoch == 0:
        raise ValueError(f"batch size {tc.batch_size} is larger than the {len(train_set)} training images")
    total = steps_per_epoch * tc.epochs
    forward = torch.compile(forward) if resolve_compile(tc.compile, dev, total) else forward
    warmup = int(tc.warmup_epochs * steps_per_epoch)
    step = start_step
    stop_requested = False

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous_handler = signal.signal(signal.SIGINT, on_sigint) if _main_thread() else None
    from vitlens.progress import TrainProgress

    evaluated = average.model if average else model  # what is evaluated, saved and returned
    mine = slice(world.rank * local_batch, (world.rank + 1) * local_batch)  # this process's share of a batch

    model.train()
    try:
        with TrainProgress(total, start_step, enabled=progress and world.is_main) as bar:
            while step < total and not stop_requested:
                epoch, offset = divmod(step, steps_per_epoch)
                order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(tc.seed * 7919 + epoch))
                seen = correct = 0
                loss_sum = 0.0
                started = time.perf_counter()
                for i in range(offset, steps_per_epoch):
                    idx = order[i * tc.batch_size:(i + 1) * tc.batch_size]
                    gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + step)
                    torch.manual_seed(tc.seed * 1_000_003 + step)  # dropout / drop path of this step
                    # every process draws the whole global batch's augmentation, then keeps its share
                    x = standardise(random_affine(to_unit(train_set.images[idx], dev), gen, augment), config)[mine]
                    y = train_set.labels[idx][mine].to(dev)
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(step, total, warmup, tc)
                    with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                        logits = forward(x)
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=tc.label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if tc.clip_grad > 0:
                        nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad)
                    optimizer.step()
                    if average:
                        average.update(step)
                    step += 1
                    seen += len(y)
                    loss_sum += float(loss.detach()) * len(y)
                    correct += int((logits.argmax(-1) == y).sum())
                    bar.update(step, epoch + 1, tc.epochs, loss_sum / seen, correct / seen,
                               seen / (time.perf_counter() - started))
                    stop_requested = stop_requested or (stop_after_steps is not None and step >= stop_after_steps)
                    if world.distributed:  # all processes stop at the same step, or some would wait forever
                        flag = torch.tensor(float(stop_requested), device=dev)
                        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                        stop_requested = bool(flag.item())
                    if stop_requested:
                        break
                if step % steps_per_epoch == 0:  # an epoch finished: evaluate and record
                    result = evaluate(evaluated, test_set, tc.eval_batch_size, dev)
                    elapsed = (history[-1]["time_s"] if history else 0.0) + bar.take_elapsed()
                    history.append({"epoch": step // steps_per_epoch, "step": step, "lr": learning_rate(step - 1, total,
                                    warmup, tc), "train_loss": loss_sum / max(seen, 1),
                                    "train_accuracy": correct / max(seen, 1), "test_loss": result.loss,
                                    "test_accuracy": result.accuracy, "time_s": elapsed})
                    if world.is_main:
                        _append_metrics(out, history[-1])
                    bar.log_epoch(history[-1])
                if world.is_main:
                    _save_run(out, model, average, optimizer, tc, step, step // steps_per_epoch, history, data_spec)
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        leave(world)
    interrupted = step < total
    if not interrupted and world.is_main:
        _write_plots(out, evaluated, test_set, history, tc, dev)
    return TrainResult(evaluated.eval(), out, history, interrupted)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _append_metrics(out: Path, row: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")


def _write_plots(out: Path, model: VisionTransformer, test_set: ImageDataset, history: list[dict[str, Any]],
                 tc: TrainConfig, device: torch.device) -> None:
    from vitlens.viz import plot_confusion, plot_curves, save_figure

    save_figure(plot_curves(history), out / "curves.png")
    result = evaluate(model, test_set, tc.eval_batch_size, device)
    save_figure(plot_confusion(result.confusion, result.class_names), out / "confusion.png")
