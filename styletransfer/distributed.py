"""Several processes under torchrun: the process group from the environment, replica checks.

``torchrun --nproc-per-node N -m styletransfer train|stylize-dataset ...`` sets WORLD_SIZE, RANK,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT. With WORLD_SIZE > 1 a command joins a process group
(nccl for CUDA, gloo for the CPU), unless the caller already created one: training wraps the
decoder in DistributedDataParallel, ``stylize-dataset`` shares the chunks of its file list.
Without those variables everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

BACKENDS = {"cuda": "nccl", "cpu": "gloo"}


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # created here, so destroyed here

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device, *, timeout: timedelta | None = None) -> tuple["Distributed", torch.device]:
        """The process group torchrun describes (joined here if needed) and this process's device.

        With CUDA each process takes one GPU: ``cuda`` becomes ``cuda:LOCAL_RANK``. ``timeout``:
        how long a collective (a barrier) waits for the other processes (None: torch's default).
        """
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls(), device
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)  # before the group forms, so nccl knows each process's GPU
        owns = False
        if not dist.is_initialized():
            dist.init_process_group(backend=BACKENDS.get(device.type, "gloo"), timeout=timeout)
            owns = True
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, owns), device

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes, in place."""
        if self.enabled:
            dist.all_reduce(tensor)
        return tensor

    def replicas_agree(self, module: nn.Module) -> bool:
        """Whether every process holds exactly rank 0's parameters.

        Buffers are left out: DDP hands rank 0's buffers (batch-norm running statistics) to all
        processes before each forward pass, and each process then updates its own copy.
        """
        if not self.enabled:
            return True
        differing = 0
        for tensor in module.parameters():
            reference = tensor.detach().clone()
            dist.broadcast(reference, src=0)
            differing += int(not torch.equal(reference, tensor))
        count = torch.tensor([float(differing)], device=next(module.parameters()).device)
        return float(self.sum_(count)) == 0

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
