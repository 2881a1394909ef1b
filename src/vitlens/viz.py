"""Plots people would rather see than read (matplotlib figures; `save_figure` writes PNGs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write a figure as PNG (atomically) and close it."""
    from vitlens.checkpoint import atomic_write

    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, bbox_inches="tight", format="png"))
    plt.close(fig)
    return path


def plot_curves(history: list[dict[str, Any]]) -> Figure:
    """Loss and accuracy per epoch, train and test."""
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [r["train_accuracy"] for r in history], label="train (augmented)")
    ax_acc.plot(epochs, [r["test_accuracy"] for r in history], label="test")
    best = max(history, key=lambda r: r["test_accuracy"]) if history else None
    if best:
        ax_acc.annotate(f"{best['test_accuracy']:.4f}", (best["epoch"], best["test_accuracy"]),
                        textcoords="offset points", xytext=(-10, -15))
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion(confusion: Tensor, class_names: list[str]) -> Figure:
    """Confusion matrix: rows the true class, columns the predicted one, counts in the cells."""
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    data = confusion.numpy()
    ax.imshow(data, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=45 if max(map(len, class_names)) > 2 else 0, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix ({int(data.trace())}/{int(data.sum())} right)")
    threshold = data.max() / 2 if data.size else 0
    for i in range(k):
        for j in range(k):
            if data[i, j]:
                ax.text(j, i, str(data[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if data[i, j] > threshold else "black")
    fig.tight_layout()
    return fig


def _display(pixels: Tensor) -> Any:
    """(C, H, W) in [0, 1] → what imshow takes, plus its colour map."""
    img = pixels.detach().cpu().float().clamp(0, 1)
    return (img[0].numpy(), "gray") if img.shape[0] == 1 else (img.permute(1, 2, 0).numpy(), None)


def plot_patch_grid(pixels: Tensor, patch_size: int) -> Figure:
    """The image with its P×P patch grid and the patches numbered in row-major order."""
    data, cmap = _display(pixels)
    h, w = data.shape[:2]
    fig, ax = plt.subplots(figsize=(5, 5 * h / w))
    ax.imshow(data, cmap=cmap, vmin=0, vmax=1)
    for y in range(0, h + 1, patch_size):
        ax.axhline(y - 0.5, color="tab:orange", lw=1)
    for x in range(0, w + 1, patch_size):
        ax.axvline(x - 0.5, color="tab:orange", lw=1)
    gw = w // patch_size
    for n in range((h // patch_size) * gw):
        r, c = divmod(n, gw)
        ax.text(c * patch_size + 1, r * patch_size + 1, str(n), color="tab:orange", fontsize=8, va="top")
    ax.set(title=f"{(h // patch_size) * gw} patches of {patch_size}×{patch_size} (row-major)", xticks=[], yticks=[])
    return fig


def _overlay(ax: Any, pixels: Tensor, weights: Tensor, grid: tuple[int, int], title: str) -> None:
    import torch.nn.functional as F

    data, cmap = _display(pixels)
    h, w = data.shape[:2]
    heat = F.interpolate(weights.reshape(1, 1, *grid).float(), size=(h, w), mode="nearest")[0, 0].numpy()
    ax.imshow(data, cmap=cmap, vmin=0, vmax=1)
    ax.imshow(heat, cmap="inferno", alpha=0.6)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_cls_attention(pixels: Tensor, cls_attention: Tensor, grid: tuple[int, int]) -> Figure:
    """A grid of maps, layers down and heads across: the class token's attention to each patch."""
    layers, heads = cls_attention.shape[:2]
    fig, axes = plt.subplots(layers, heads, figsize=(1.8 * heads, 1.8 * layers), squeeze=False)
    for layer in range(layers):
        for head in range(heads):
            _overlay(axes[layer][head], pixels, cls_attention[layer, head], grid, f"layer {layer} head {head}")
    fig.suptitle("where the class token looks (attention to each patch)")
    fig.tight_layout()
    return fig


def plot_rollout(pixels: Tensor, rollout: Tensor, grid: tuple[int, int], title: str = "attention rollout") -> Figure:
    fig, ax = plt.subplots(figsize=(4, 4))
    _overlay(ax, pixels, rollout, grid, title)
    return fig


def plot_cls_evolution(norms: list[float], cosines: list[float]) -> Figure:
    """‖x_cls‖ after each layer and its cosine to the previous layer's."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(range(len(norms)), norms, marker="o")
    a.set(xlabel="layer (0 = x⁰)", ylabel="‖x_cls‖", title="class-token norm")
    b.plot(range(1, len(cosines) + 1), cosines, marker="o", color="tab:green")
    b.set(xlabel="layer", ylabel="cosine", title="cosine to the previous layer", ylim=(min([*cosines, 0]) - 0.05, 1.05))
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_probabilities(probabilities: Tensor, class_names: list[str]) -> Figure:
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(class_names) + 1), 3))
    values = probabilities.detach().cpu().float().numpy()
    colors = ["tab:blue"] * len(values)
    colors[int(values.argmax())] = "tab:orange"
    ax.bar(range(len(values)), values, color=colors)
    ax.set_xticks(range(len(values)), class_names, rotation=45 if max(map(len, class_names)) > 2 else 0)
    ax.set(ylim=(0, 1), ylabel="probability", title=f"prediction: {class_names[int(values.argmax())]}")
    fig.tight_layout()
    return fig
