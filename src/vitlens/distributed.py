"""Multi-process training through PyTorch's own engine: torchrun launches, DDP averages gradients.

``torchrun --nproc_per_node N -m vitlens train …`` (and torchrun's ``--nnodes/--node_rank/
--rdzv_endpoint`` flags for several machines) sets WORLD_SIZE, RANK and LOCAL_RANK; the trainer
then joins the process group (NCCL on GPUs, gloo on CPUs) and wraps the model in
DistributedDataParallel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # True when this module created the process group (and must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def join(device: str | None) -> tuple[World, torch.device]:
    """The process's place in a torchrun job (a world of one without torchrun) and its device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    if device is not None:
        dev = torch.device(device)
    elif cuda:
        dev = torch.device("cuda", local_rank if size > 1 else 0)
    else:
        dev = torch.device("cpu")
    if size <= 1:
        return World(), dev
    owns = False
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        owns = True
    return World(dist.get_rank(), dist.get_world_size(), local_rank, owns), dev


def leave(world: World) -> None:
    if world.owns_group and dist.is_initialized():
        dist.destroy_process_group()
