"""CLI subcommands of the core library: `train RECIPE.toml`, `worker SPEC.json`, `export CHECKPOINT --out DIR`,
`compress --model ID|DIR --out DIR` and `logits save|check` (compression, see app.train.compress).

Importing this module must not import torch (the CLI builds its parser where torch is absent, e.g. the frozen
bundle): torch is imported inside the handlers only. Each handler returns an exit code (0 finished, 1 failed,
3 cancelled) and raises a VitascopeError with a one-line message for bad input (the CLI exits 2).

A recipe is a JobSpec in TOML, read by app.core.recipe.load_recipe; progress lines come from
app.core.events.print_event."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from app.core.card import RECIPE_FILE
from app.core.errors import BadInput, JobError, VitascopeError
from app.core.events import print_event
from app.core.jobs import CancelToken, ProgressEvent
from app.core.recipe import load_recipe
from app.core.validate import check_output_dir

__all__ = ["add_cli", "load_recipe", "print_event", "require_torch"]

MAX_NPROC = 64
NO_TORCH = "training needs the core library (torch), which this build does not include; install vitascope[train]"


def require_torch() -> None:
    """One clear line (exit 2) instead of an ImportError traceback where torch is absent (the frozen app)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise VitascopeError(NO_TORCH)


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add `train`, `worker` and `export`; each parser sets `func(args) -> int`."""
    p = subparsers.add_parser("train", help="train (and export) a model from a recipe TOML, in this process")
    p.add_argument("recipe", help="recipe TOML: a JobSpec (kind, seed, out_dir, [params])")
    p.add_argument("--out", default=None, help="checkpoint/output folder (overrides the recipe's out_dir)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/ckpt_last.pt")
    p.add_argument("--nproc", type=int, default=1, help="train on N local processes (torchrun --standalone, "
                   "DistributedDataParallel: gloo on CPU, NCCL on GPUs); rank 0 writes events and checkpoints")
    p.set_defaults(func=train_cmd)

    w = subparsers.add_parser("worker", help="run one job spec, JSON-lines events on stdout (used by the GUI)")
    w.add_argument("spec", help="JobSpec JSON file")
    w.set_defaults(func=worker_cmd)

    e = subparsers.add_parser("export", help="export a training checkpoint to a model folder (ONNX + card)")
    e.add_argument("checkpoint", help="a ckpt_*.pt written by `vitascope train`")
    e.add_argument("--out", required=True, help="model folder to write (model.onnx, card.toml, golden.npz)")
    e.add_argument("--id", default=None, help="model id for the card (default: the checkpoint's, or the folder name)")
    e.set_defaults(func=export_cmd)

    c = subparsers.add_parser("compress", help="depth-reparameterize / distil / quantize a model (needs checkpoint.pt)")
    c.add_argument("--model", required=True, help="model id or model folder holding checkpoint.pt")
    c.add_argument("--out", required=True, help="model folder to write")
    c.add_argument("--reparam-depth", type=int, default=0, help="student depth L (must divide the teacher depth)")
    c.add_argument("--distill", default="", help="kd | nkd | uskd | logits:STORE (default kd; regression: "
                   "prediction + feature MSE)")
    c.add_argument("--quant", default="", help="int8 (ORT QDQ) or wXaY-METHOD fake-quant evaluation, METHOD in "
                   "minmax, percentile, repq, sulq, ias (e.g. w4a4-repq)")
    c.add_argument("--steps", type=int, default=200, help="distillation steps of the student")
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--lr", type=float, default=5e-4)
    c.add_argument("--calib-samples", type=int, default=256, help="calibration samples (32-1024)")
    c.add_argument("--quant-iters", type=int, default=200, help="I&S-ViT reconstruction iterations per block")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--threads", type=int, default=2, help="torch threads (1 on a loaded machine: 2 threads that "
                   "spin-wait for a busy core can be many times slower)")
    c.add_argument("--id", default="", help="model id for the card (default: the output folder name)")
    c.add_argument("--latency-runs", type=int, default=50)
    c.set_defaults(func=compress_cmd)

    lg = subparsers.add_parser("logits", help="TinyViT sparse teacher-logit store: save or check")
    lg.add_argument("action", choices=("save", "check"))
    lg.add_argument("--model", required=True, help="teacher: model id or folder holding checkpoint.pt")
    lg.add_argument("--store", required=True, help="store folder")
    lg.add_argument("--topk", type=int, default=10)
    lg.add_argument("--epochs", type=int, default=1)
    lg.add_argument("--seed", type=int, default=0)
    lg.add_argument("--limit", type=int, default=0, help="check: only the first N samples of each epoch")
    lg.set_defaults(func=logits_cmd)


def train_cmd(args: argparse.Namespace) -> int:
    """`vitascope train RECIPE.toml [--out DIR] [--resume] [--nproc N]`; Ctrl-C cancels with a checkpoint (a second
    Ctrl-C aborts). With --nproc N > 1 the recipe runs under torchrun (app.train.ddp_launch)."""
    require_torch()
    spec = load_recipe(args.recipe, args.out, args.resume)
    nproc = getattr(args, "nproc", None)
    nproc = 1 if nproc is None else nproc
    if not 1 <= nproc <= MAX_NPROC:
        raise BadInput(f"--nproc {nproc}: give 1 to {MAX_NPROC} processes")
    check_output_dir(spec.out_dir, "--out" if args.out is not None else "out_dir")
    export_dir = spec.params.get("export", {}).get("out_dir") if isinstance(spec.params.get("export"), dict) else None
    if export_dir:
        check_output_dir(export_dir, "params.export.out_dir")
    if nproc > 1:
        from app.train import ddp_launch, worker

        worker.prepare(spec)  # a bad recipe is bad input (exit 2) before any process starts
        code = ddp_launch.launch(args.recipe, nproc, args.out, args.resume)
        export = spec.params.get("export")
        if code == 0 and isinstance(export, dict) and export.get("out_dir"):
            _copy_recipe(Path(args.recipe), Path(export["out_dir"]))
        return code if code in (0, 1, 3) else 1
    from app.train import worker  # imports torch

    job = worker.prepare(spec)  # a bad spec raises JobError → exit 2
    cancel = CancelToken()

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        sys.stderr.write("stopping after this step (writing a checkpoint); Ctrl-C again to abort\n")
        cancel.cancel()

    sys.stderr.write(f"training {spec.name} → {spec.out_dir}\n")
    old = signal.signal(signal.SIGINT, on_sigint)
    try:
        code = worker.run_job(spec, print_event, cancel, job)
    finally:
        signal.signal(signal.SIGINT, old)
    export = spec.params.get("export")
    if code == 0 and isinstance(export, dict) and export.get("out_dir"):
        _copy_recipe(Path(args.recipe), Path(export["out_dir"]))
    return code


def _copy_recipe(recipe: Path, model_dir: Path) -> None:
    dest = model_dir / RECIPE_FILE
    if model_dir.is_dir() and recipe.resolve() != dest.resolve() and not dest.exists():
        shutil.copy2(recipe, dest)


def worker_cmd(args: argparse.Namespace) -> int:
    """`vitascope worker SPEC.json`: see app.train.worker for the protocol and exit codes."""
    require_torch()
    from app.train import worker

    return worker.main(args.spec)


def export_cmd(args: argparse.Namespace) -> int:
    """`vitascope export CHECKPOINT --out DIR`: rebuild the model from the checkpoint and export it."""
    require_torch()
    from app.train import checkpoint, pipeline

    check_output_dir(args.out)
    checkpoint.load_checkpoint(args.checkpoint)  # unreadable → JobError → exit 2
    try:
        pipeline.export_from_checkpoint(args.checkpoint, Path(args.out).expanduser().resolve(), print_event,
                                        id=args.id)
    except VitascopeError as e:
        print_event(ProgressEvent("failed", message=str(e)))
        return 1
    return 0


def compress_cmd(args: argparse.Namespace) -> int:
    """`vitascope compress --model ID|DIR --out DIR [...]`; a missing checkpoint.pt is bad input (exit 2)."""
    require_torch()
    from app.train.compress import CompressSpec, compress

    check_output_dir(args.out)
    for name in ("steps", "batch_size", "calib_samples", "quant_iters", "threads", "latency_runs"):
        if getattr(args, name) < (0 if name in ("steps", "latency_runs") else 1):
            raise BadInput(f"--{name.replace('_', '-')} {getattr(args, name)}: must be positive")
    if not (args.lr > 0 and args.lr < 1e3):
        raise BadInput(f"--lr {args.lr}: give a learning rate above 0 (e.g. 5e-4)")
    if args.reparam_depth < 0:
        raise BadInput(f"--reparam-depth {args.reparam_depth}: must not be negative")
    cs = CompressSpec(model=args.model, out=args.out, reparam_depth=args.reparam_depth, distill=args.distill,
                      quant=args.quant, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                      calib_samples=args.calib_samples, quant_iters=args.quant_iters, seed=args.seed,
                      threads=args.threads, id=args.id, latency_runs=args.latency_runs)
    try:
        out = compress(cs, print_event)
    except (BadInput, JobError) as e:
        if isinstance(e, BadInput):
            raise
        print_event(ProgressEvent("failed", message=str(e)))
        return 1
    print_event(ProgressEvent("finished", path=str(out), message=f"compressed model written to {out}"))
    return 0


def logits_cmd(args: argparse.Namespace) -> int:
    """`vitascope logits save|check --model ID|DIR --store DIR`: TinyViT's sparse teacher-logit store."""
    require_torch()
    from app.train import logits_store

    for name in ("topk", "epochs"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name} {getattr(args, name)}: must be 1 or more")
    if args.limit < 0:
        raise BadInput(f"--limit {args.limit}: must not be negative")
    if args.action == "save":
        check_output_dir(args.store, "--store")
        path = logits_store.save_for_model(args.model, args.store, topk=args.topk, epochs=args.epochs, seed=args.seed)
        sys.stderr.write(f"logit store written: {path}\n")
        return 0
    worst = logits_store.check_for_model(args.model, args.store, limit=args.limit)
    sys.stderr.write(f"logit store {args.store}: max |stored - recomputed| probability {worst:.3g}\n")
    return 0 if worst <= logits_store.CHECK_ATOL else 1
