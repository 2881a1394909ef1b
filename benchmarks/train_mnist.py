"""Time-to-accuracy of `vitlens train` on the bundled MNIST split (4,000 train / 1,000 test digits).

    python benchmarks/train_mnist.py --out benchmarks/results/train_mnist.json
    python benchmarks/train_mnist.py --set image_size=28 --set patch_size=7 --epochs 40   # another recipe

Writes the per-epoch history, the final test accuracy and the wall time (training + per-epoch
evaluation, from the start of training) at which the test accuracy first reached 95/97/98/98.5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from vitlens.config import preset
from vitlens.training import TrainConfig, seconds_to_accuracy, train

THRESHOLDS = (0.95, 0.97, 0.98, 0.985)


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run(args: argparse.Namespace) -> dict[str, object]:
    overrides = dict(item.split("=", 1) for item in args.set)
    config = preset(args.preset, **{k: parse_value(v) for k, v in overrides.items()})
    tc = TrainConfig(**{k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__ and v is not None})
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train(config, None, Path(tmp) / "run", tc, progress=not args.quiet)
        wall = time.perf_counter() - started
    history = result.history
    reached = {f"{t:.3f}": s for t, s in seconds_to_accuracy(history, THRESHOLDS).items()}
    return {
        "benchmark": "train_mnist_bundled",
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "threads": torch.get_num_threads(), "torch": torch.__version__},
        "model": config.to_dict(), "parameters": sum(p.numel() for p in result.model.parameters()),
        "train": asdict(tc), "final_test_accuracy": history[-1]["test_accuracy"],
        "best_test_accuracy": max(r["test_accuracy"] for r in history),
        "seconds_to_accuracy": reached, "wall_s": wall, "history": history,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mnist")
    parser.add_argument("--set", action="append", default=[], help="model config override, e.g. patch_size=7")
    for name in ("epochs", "batch_size", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int)
    for name in ("lr", "weight_decay", "warmup_epochs", "label_smoothing", "min_lr", "clip_grad", "ema"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float)
    parser.add_argument("--augment")
    parser.add_argument("--precision")
    parser.add_argument("--compile", choices=["auto", "on", "off"], help="torch.compile the model (default auto)")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    summary = {k: report[k] for k in ("final_test_accuracy", "best_test_accuracy", "seconds_to_accuracy", "wall_s")}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
