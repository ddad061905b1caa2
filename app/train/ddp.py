"""The process-group context of a training run: every rank runs the same loop with DistributedDataParallel (gloo on
CPU, NCCL on GPUs) on its shard of each batch, and rank 0 alone writes events, checkpoints and the exported model.
Starting the ranks is app.train.ddp_launch's job.

The loop asks `context()` for the process group; without one (a plain run) every hook is the identity, so
single-process training is unchanged bit for bit."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from app.core.jobs import ProgressEvent

EventFn = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class Dist:
    """This process's place in the group: rank `rank` of `world` (rank 0 of 1 without a process group)."""

    rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel around `model` (gradients all-reduced in backward); the model itself alone."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch (every world-th sample), like DistributedSampler per step."""
        return t[self.rank::self.world] if self.enabled else t

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over the ranks (the same float on every rank)."""
        if not self.enabled:
            return float(value)
        t = value.detach().reshape(1).to(torch.float64).clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item() / self.world)

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on any rank (cancel requests, write errors)."""
        if not self.enabled:
            return bool(flag)
        t = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def events(self, on_event: EventFn) -> EventFn:
        """Rank 0 reports; the other ranks' events are dropped (they would be identical)."""
        if self.main:
            return on_event
        return lambda ev: None


def context() -> Dist:
    """The current process group, or a single process."""
    if dist.is_available() and dist.is_initialized():
        return Dist(dist.get_rank(), dist.get_world_size())
    return Dist()


def backend() -> str:
    return "nccl" if torch.cuda.is_available() and os.environ.get("VITASCOPE_DDP_BACKEND") != "gloo" else "gloo"
