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
