"""Dynamic micro-batching: requests that arrive together run through the model as one batch.

As Triton's and TorchServe's dynamic batchers do: the first waiting request opens a batch, which
takes every request already queued and then waits at most ``max_wait_ms`` for more, up to
``max_batch``. The model runs in one worker thread, so while it computes a batch the event loop
keeps accepting requests, and they form the next batch. Each request gets its own row back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


@dataclass
class BatchResult:
    row: Tensor  # this request's output row
    batch_size: int  # how many requests shared the forward pass


class MicroBatcher:
    """Collects (C, H, W) inputs into (B, C, H, W) batches for ``fn`` (a batch → (B, …) outputs).

    ``max_batch=1`` turns batching off: every request runs alone, through the same queue and thread.
    """

    def __init__(self, fn: Callable[[Tensor], Tensor], max_batch: int = 64, max_wait_ms: float = 2.0) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be 0 or more, got {max_wait_ms}")
        self.fn, self.max_batch, self.max_wait = fn, max_batch, max_wait_ms / 1000
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vitlens-model")
        self.queue: asyncio.Queue[tuple[Tensor, asyncio.Future[BatchResult]]] | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._serve())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def submit(self, x: Tensor) -> BatchResult:
        """Queue one input and wait for its output row."""
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() has not been awaited")
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        await self.queue.put((x, future))
        return await future

    async def run_alone(self, fn: Callable[..., T], *args: Any) -> T:
        """Run other model work (e.g. a traced forward pass) on the model's thread, between batches."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _collect(self) -> list[tuple[Tensor, asyncio.Future[BatchResult]]]:
        assert self.queue is not None
        items = [await self.queue.get()]
        deadline = time.perf_counter() + self.max_wait
        while len(items) < self.max_batch:
            if not self.queue.empty():
                items.append(self.queue.get_nowait())
                continue
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            try:
                items.append(await asyncio.wait_for(self.queue.get(), remaining))
            except TimeoutError:
                break
        return items

    def _forward(self, batch: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.fn(batch)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            live = [(x, f) for x, f in items if not f.cancelled()]
            if not live:
                continue
            try:
                out = await loop.run_in_executor(self.executor, self._forward, torch.stack([x for x, _ in live]))
            except Exception as err:  # the model failed: every waiting request hears why
                for _, future in live:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), row in zip(live, out, strict=True):
                if not future.done():
                    future.set_result(BatchResult(row, len(live)))
