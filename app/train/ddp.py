"""Multi-process training: `vitascope train RECIPE --nproc N` relaunches the recipe under `torchrun --standalone`;
every rank runs the same loop with DistributedDataParallel (gloo on CPU, NCCL on GPUs) on its shard of each batch,
and rank 0 alone writes events, checkpoints and the exported model.

The loop asks `context()` for the process group; without one (a plain run) every hook is the identity, so
single-process training is unchanged bit for bit."""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from app.core.jobs import CancelToken, ProgressEvent

log = logging.getLogger(__name__)
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


def torchrun_command(recipe: str, nproc: int, out: str | None = None, resume: bool = False) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node N -m app.train.ddp RECIPE [...]`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "app.train.ddp", str(recipe)]
    if out:
        cmd += ["--out", str(out)]
    if resume:
        cmd.append("--resume")
    return cmd


def launch(recipe: str, nproc: int, out: str | None = None, resume: bool = False) -> int:
    """Run the recipe on `nproc` local processes; returns torchrun's exit code (0 finished, 3 cancelled, 1)."""
    import subprocess

    from app.core import paths

    env = dict(os.environ)
    root = str(paths.install_root())
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = torchrun_command(recipe, nproc, out, resume)
    log.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the ranks got SIGINT too (same process group): they checkpoint and stop
        return proc.wait()


def _quiet(ev: ProgressEvent) -> None:
    if ev.event == "failed":
        log.error("rank %s: %s", os.environ.get("RANK", "?"), ev.message)


def main(argv: list[str] | None = None) -> int:
    """One rank (started by torchrun): join the group, run the recipe, leave. Rank 0 prints the events."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s rank{os.environ.get('RANK', '0')} %(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m app.train.ddp")
    ap.add_argument("recipe")
    ap.add_argument("--out", default=None)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)

    from app.core.errors import VitascopeError
    from app.train import worker
    from app.train.commands import load_recipe, print_event

    dist.init_process_group(backend())
    ctx = context()
    try:
        try:
            spec = load_recipe(args.recipe, args.out, args.resume)
            params = dict(spec.params)
            params["threads"] = max(1, int(params.get("threads", 1)) // ctx.world)
            if not ctx.main:
                params.pop("export", None)  # rank 0 exports the model
            spec.params = params
            bs = int(params.get("batch_size", 64))
            if bs % ctx.world:
                log.warning("batch size %d is not a multiple of %d processes: shards differ in size", bs, ctx.world)
            job = worker.prepare(spec)
        except VitascopeError as e:
            sys.stderr.write(f"{e}\n")
            return 2
        cancel = CancelToken()

        def on_signal(signum: int, frame: Any) -> None:
            cancel.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        if ctx.main:
            sys.stderr.write(f"training {spec.name} on {ctx.world} processes ({backend()}) → {spec.out_dir}\n")
        code = worker.run_job(spec, print_event if ctx.main else _quiet, cancel, job)
        log.info("rank %d of %d done (exit code %d)", ctx.rank, ctx.world, code)
        return code
    finally:
        _leave()


def _leave() -> None:
    """Leave the group together: a rank tearing gloo down while its peer is still in the group aborts the peer
    ("terminate called without an active exception", seen under load)."""
    try:
        if backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
        else:
            dist.barrier()
    except Exception as e:  # a peer that died already: leave anyway
        log.warning("leaving without the final barrier (%s)", e)
    dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
