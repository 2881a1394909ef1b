"""Test accuracy per epoch on the bundled MNIST split: how fast does each model *learn* (not run)?

    python benchmarks/learning_speed.py --out benchmarks/results/learning_speed.json
    python benchmarks/learning_speed.py --image-size 28 --patch 4 --epochs 5 --augment none   # init comparison
    python benchmarks/learning_speed.py --epochs 60 --only "vit-pytorch SimpleViT"   # the peer's time to 98 %

Trains, one after the other in one loop (same data order, augmentation, AdamW, warm-up + cosine,
label smoothing 0.1, batch 64, and the weight average that vitlens evaluates; `--ema 0` for none):
the `mnist` preset with timm's init (N(0, 0.02)), the same with PyTorch's init (the preset's
default) and, when vit-pytorch is installed (`make bench` installs it), its SimpleViT of the same
size. This is the measurement behind the preset's ``weight_init="torch"``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vitlens.bench import vit_pytorch_class
from vitlens.config import ViTConfig, preset
from vitlens.data.augment import random_affine
from vitlens.data.datasets import ImageDataset, load_data
from vitlens.model.vit import VisionTransformer
from vitlens.preprocess import standardise
from vitlens.training import TrainConfig, WeightAverage, seconds_to_accuracy, to_unit


def models(config: ViTConfig) -> dict[str, nn.Module]:
    found: dict[str, nn.Module] = {}
    for init in ("timm", "torch"):
        torch.manual_seed(0)
        found[f"vitlens init={init}"] = VisionTransformer(config.replace(weight_init=init))
    simple_vit = vit_pytorch_class("simple_vit", "SimpleViT")
    if simple_vit is not None:
        torch.manual_seed(0)
        found["vit-pytorch SimpleViT"] = simple_vit(
            image_size=config.image_size, patch_size=config.patch_size, num_classes=config.num_classes, dim=config.dim,
            depth=config.depth, heads=config.heads, mlp_dim=config.hidden_dim, channels=config.in_channels,
            dim_head=config.head_dim)
    return found


def learn(model: nn.Module, config: ViTConfig, data: dict[str, ImageDataset], epochs: int, augment: str,
          ema: float, lr: float = 2e-3, batch: int = 64) -> list[dict[str, Any]]:
    train, test = data["train"], data["test"]
    x_test = standardise(to_unit(test.images, torch.device("cpu")), config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    average = WeightAverage(model, ema) if ema > 0 else None
    evaluated = average.model if average else model
    steps = len(train) // batch
    total, warmup = steps * epochs, 2 * steps
    history, step, started = [], 0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(epoch))
        for i in range(steps):
            idx = order[i * batch:(i + 1) * batch]
            images = random_affine(to_unit(train.images[idx], torch.device("cpu")),
                                   torch.Generator().manual_seed(step), augment)
            warm = min(1.0, (step + 1) / warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr * warm * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = F.cross_entropy(model(standardise(images, config)), train.labels[idx], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average:
                average.update(step)
            step += 1
        evaluated.eval()
        with torch.inference_mode():
            accuracy = float((evaluated(x_test).argmax(-1) == test.labels).float().mean())
        history.append({"epoch": epoch + 1, "test_accuracy": accuracy, "time_s": time.perf_counter() - started})
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patch", type=int, help="patch size (default: the preset's)")
    parser.add_argument("--image-size", type=int, help="digits resized to this size (default: the preset's)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--augment", default="digits", choices=("digits", "none"))
    parser.add_argument("--ema", type=float, default=TrainConfig.ema, help="weight-average decay (0: off)")
    parser.add_argument("--only", action="append", help="train only this model (repeatable)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    config = preset("mnist")
    config = config.replace(image_size=args.image_size or config.image_size, patch_size=args.patch or config.patch_size)
    report: dict[str, Any] = {"benchmark": "learning_speed", "image_size": config.image_size[0],
                              "patch_size": config.patch_size, "augment": args.augment,
                              "ema": args.ema, "threads": torch.get_num_threads(), "runs": {}}
    data = load_data(None, config.image_size)
    for name, model in models(config).items():
        if args.only and name not in args.only:
            continue
        history = learn(model, config, data, args.epochs, args.augment, args.ema)
        report["runs"][name] = history
        reached = seconds_to_accuracy(history, (0.95, 0.97, 0.98))
        report.setdefault("seconds_to_accuracy", {})[name] = reached
        print(f"{name:24s}", " ".join(f"{r['test_accuracy']:.3f}" for r in history), flush=True)
        print(f"{'':24s} seconds to 95/97/98 %:", reached, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
