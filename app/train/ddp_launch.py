"""Multi-process training: `vitascope train RECIPE --nproc N` relaunches the recipe under `torchrun --standalone`
(`launch`); each rank (`main`, run as `python -m app.train.ddp_launch`) joins the process group, runs the recipe
and leaves the group together with its peers."""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import signal
import subprocess
import sys
from typing import Any

import torch.distributed as dist

from app.core import paths
from app.core.errors import VitascopeError
from app.core.events import print_event
from app.core.jobs import CancelToken, ProgressEvent
from app.core.recipe import load_recipe

from . import worker
from .ddp import backend, context

log = logging.getLogger(__name__)


def torchrun_command(recipe: str, nproc: int, out: str | None = None, resume: bool = False) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc-per-node N -m app.train.ddp_launch RECIPE [...]`."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={int(nproc)}",
           "-m", "app.train.ddp_launch", str(recipe)]
    if out:
        cmd += ["--out", str(out)]
    if resume:
        cmd.append("--resume")
    return cmd


def launch(recipe: str, nproc: int, out: str | None = None, resume: bool = False) -> int:
    """Run the recipe on `nproc` local processes; returns torchrun's exit code (0 finished, 3 cancelled, 1)."""
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
    ap = argparse.ArgumentParser(prog="python -m app.train.ddp_launch")
    ap.add_argument("recipe")
    ap.add_argument("--out", default=None)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)

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
