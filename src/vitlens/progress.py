"""A rich progress bar for training: step, epoch, loss, accuracy and images/s."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, total: int, completed: int = 0, enabled: bool = True) -> None:
        self.console = Console()
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} · acc {task.fields[acc]:.3f} · {task.fields[ips]:.0f} img/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, disable=not enabled, transient=False,
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, epoch="-", loss=0.0, acc=0.0,
                                           ips=0.0)
        self._last = time.perf_counter()

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        self._last = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, epoch: int, epochs: int, loss: float, acc: float, ips: float) -> None:
        self.progress.update(self.task, completed=step, epoch=f"{epoch}/{epochs}", loss=loss, acc=acc, ips=ips)

    def take_elapsed(self) -> float:
        """Wall time since the last call (or the start)."""
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        return elapsed

    def log_epoch(self, row: dict[str, Any]) -> None:
        if self.enabled:
            self.progress.console.print(
                f"epoch {row['epoch']:>3}  train loss {row['train_loss']:.4f}  acc {row['train_accuracy']:.4f}  "
                f"test loss {row['test_loss']:.4f}  [bold]test acc {row['test_accuracy']:.4f}[/]  "
                f"({row['time_s']:.1f} s)"
            )
