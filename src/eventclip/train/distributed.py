"""DDP under ``torchrun``: joining the process group, this process's rank and device, and averaging
gradients of modules DDP cannot wrap (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def rank() -> int:
    """This process's rank in the torchrun group (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    """The number of processes in the torchrun group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def init_distributed() -> torch.device:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); return this process's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """All-reduce-mean the gradients (what DDP does), for modules we cannot wrap (frozen siblings)."""
    if world() == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world()


