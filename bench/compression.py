"""Every compression variant of a model side by side: teacher fp32, merged students (depth 6/4/3, or the divisors
of a shallower teacher's depth), int8 QDQ of the student, W6A6 / W4A4 RepQ, W4A4 SULQ (RepQ + SULQ softmax),
W4A4 I&S-ViT (SULQ + three-stage reconstruction), W4A4 MinMax — held-out metric, onnxruntime latency (batch 1,
2 threads, ratios vs the teacher in the same run), size and params.

  nice -n 15 .venv/bin/python bench/compression.py [MODEL_DIR ...] [--steps 300] [--student-depth L]
      [--student DIR ...]   (students already written by `vitascope compress` from this teacher: used, not redone)

Without MODEL_DIR: every shipped model (plugins/*/models/*) holding a checkpoint.pt. Fake-quantized rows are torch
simulations (no latency); their size is params × weight bits / 8."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from app.core.card import read_card  # noqa: E402
from app.train import loop  # noqa: E402
from app.train.arch.vit import count_params  # noqa: E402
from app.train.compress import (  # noqa: E402
    CompressSpec,
    calibration_set,
    distill_student,
    heldout_data,
    load_teacher,
    metrics_of,
)
from app.train.export import export_onnx  # noqa: E402
from app.train.int8 import quantize_folder, run_onnx  # noqa: E402
from app.train.quant import quantize  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PTQ = [("W6A6 RepQ", "repq", 6, 6), ("W4A4 RepQ", "repq", 4, 4), ("W4A4 SULQ", "sulq", 4, 4),
       ("W4A4 I&S-ViT (SULQ + SOS)", "ias", 4, 4), ("W4A4 MinMax", "minmax", 4, 4)]


def student_depths(depth: int) -> list[int]:
    """6/4/3 for a 12-layer teacher; for shallower teachers the proper divisors among 6, 4, 3, 2 (at most 3)."""
    return [d for d in (6, 4, 3, 2) if d < depth and depth % d == 0][:3] or [1]


def given_students(dirs: list[Path], teacher_sha256: str) -> dict[int, tuple[object, Path, dict]]:
    """depth → (merged model, folder, reparam info) of `vitascope compress` outputs distilled from this teacher."""
    from app.train.checkpoint import load_checkpoint, model_from_checkpoint

    out = {}
    for d in dirs:
        card = read_card(d)
        if card.provenance.get("teacher_sha256") != teacher_sha256:
            raise SystemExit(f"{d}: not a student of this teacher (its card names teacher "
                             f"{card.provenance.get('teacher')!r})")
        model, _, _ = model_from_checkpoint(load_checkpoint(d / "checkpoint.pt"))
        model.eval()
        out[model.config.depth] = (model, d, dict(card.provenance.get("reparam", {})))
    return out


def bench_model(folder: Path, steps: int, student_depth: int | None, calib_n: int, runs: int, seed: int,
                quant_iters: int, given: list[Path] | None = None) -> list[dict]:
    torch.set_num_threads(1)  # training/eval: one thread (shared machine); ORT latency: 2 threads
    teacher, spec, _ = load_teacher(folder)
    tcard = read_card(folder)
    x_tr, y_tr, _, _ = loop.load_data(spec.data, spec.seed, spec.task)
    x_h, y_h, where = heldout_data(spec)
    calib, _ = calibration_set(x_tr, calib_n, seed)
    key = "accuracy" if spec.task == "classification" else "mae"
    cfg = teacher.config
    shape = (1, cfg.in_chans, cfg.img_size, cfg.img_size)
    rows = []

    def metric_torch(m) -> float:
        with torch.no_grad():
            return metrics_of(loop.predict(m, x_h).numpy(), y_h.numpy(), spec.task)[key]

    rows.append({"variant": f"teacher fp32 (depth {cfg.depth})", key: metric_torch(teacher),
                 "onnx": folder / "model.onnx", "bytes": tcard.bytes, "params": count_params(teacher)})
    depths = [student_depth] if student_depth else student_depths(cfg.depth)
    cs = CompressSpec(model=str(folder), out="", steps=steps, seed=seed, threads=1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-compression-"))
    students = {}
    ready = given_students(given or [], tcard.sha256)
    for d in depths:
        t0 = time.perf_counter()
        if d in ready:  # already distilled by `vitascope compress`: its fp32 weights (the folder may hold int8)
            merged, sdir, info = ready[d]
            note = f"distilled by vitascope compress ({sdir.name}, {info.get('seconds')} s)"
        else:
            merged, info = distill_student(teacher, d, spec, cs, x_tr, y_tr)
            note = ""
        card = export_onnx(merged, torch.zeros(2, *shape[1:]), tmp / f"d{d}", {"id": f"student-d{d}",
                           "task": tcard.task}, latency_runs=3)
        students[d] = (merged, card)
        rows.append({"variant": f"student depth {d} fp32 ({info.get('distill')}, {info.get('steps')} steps)",
                     key: metric_torch(merged), "onnx": tmp / f"d{d}" / "model.onnx", "bytes": card.bytes,
                     "params": count_params(merged), "note": note,
                     "seconds": round(time.perf_counter() - t0, 1)})
    ship = 4 if 4 in students else depths[0]
    merged, card = students[ship]
    q_card = quantize_folder(tmp / f"d{ship}", tmp / f"d{ship}-int8", calib.numpy(), latency_runs=3)
    q_out = run_onnx(tmp / f"d{ship}-int8" / "model.onnx", x_h.numpy(), q_card.inputs[0].name)
    rows.append({"variant": f"student depth {ship} int8 QDQ (ORT)", key: metrics_of(q_out, y_h.numpy(), spec.task)[key],
                 "onnx": tmp / f"d{ship}-int8" / "model.onnx", "bytes": q_card.bytes, "params": count_params(merged),
                 "ref": f"student depth {ship} fp32"})
    for label, method, wb, ab in PTQ:
        qm = quantize(merged, calib, method, wb, ab, iters=quant_iters, seed=seed)
        rows.append({"variant": f"student depth {ship} {label} (sim.)", key: metric_torch(qm), "ms": None,
                     "bytes": int(count_params(merged) * wb / 8), "params": count_params(merged)})
    timed = [r for r in rows if r.get("onnx")]
    for r, ms in zip(timed, interleaved_latency([r["onnx"] for r in timed], tcard.inputs[0].name, shape, runs),
                     strict=True):
        r["ms"] = ms
    t_lat = rows[0]["ms"]
    for r in rows:
        r["model"], r["heldout"], r["key"], r["n"] = tcard.id, where, key, int(len(x_h))
        r["speedup"] = round(t_lat / r["ms"], 2) if r.get("ms") else None
        if r.get("ref"):
            ref = next(o for o in rows if o["variant"].startswith(r["ref"]))
            r["note"] = f"{ref['ms'] / r['ms']:.2f}x vs its fp32 ONNX"
        r["onnx"] = str(r.get("onnx", ""))
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


def interleaved_latency(paths: list[Path], input_name: str, shape: tuple[int, ...], runs: int,
                        rounds: int = 7) -> list[float]:
    """Median over `rounds` interleaved rounds of per-round median ms (batch 1, 2 ORT threads): every variant
    sees the same background load, so the ratios are fair on a shared machine."""
    from app.core import runtime

    sessions = [runtime.create_session(Path(p), threads=2, warmup=False) for p in paths]
    x = np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32)
    per: list[list[float]] = [[] for _ in paths]
    for _ in range(rounds):
        for sess, acc in zip(sessions, per, strict=True):
            acc.append(statistics.median(runtime.time_runs(sess, {input_name: x}, runs)))
    return [round(statistics.median(v), 4) for v in per]


def print_table(rows: list[dict]) -> None:
    key = rows[0]["key"]
    print(f"\n{rows[0]['model']} — held-out: {rows[0]['heldout']} (n={rows[0]['n']})")
    print(f"| variant | {key} | ORT ms (b1, 2 thr) | speed-up vs teacher | size (MB) | params | note |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ms = f"{r['ms']:.3f}" if r.get("ms") else "—"
        sp = f"{r['speedup']:.2f}×" if r.get("speedup") else "—"
        print(f"| {r['variant']} | {r[key]:.4f} | {ms} | {sp} | {r['bytes'] / 1e6:.3f} | {r['params']:,} | "
              f"{r.get('note', '')} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="model folders (default: shipped models with checkpoint.pt)")
    ap.add_argument("--steps", type=int, default=300, help="distillation steps per student")
    ap.add_argument("--student-depth", type=int, default=0)
    ap.add_argument("--student", action="append", default=[], type=Path,
                    help="a student folder written by `vitascope compress` from the (single) teacher: benchmarked "
                         "instead of distilling that depth again")
    ap.add_argument("--calib", type=int, default=256, help="calibration samples")
    ap.add_argument("--quant-iters", type=int, default=200)
    ap.add_argument("--runs", type=int, default=100, help="latency runs per round (7 interleaved rounds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    folders = [Path(m) for m in args.models] or sorted(p.parent for p in REPO.glob("plugins/*/models/*/checkpoint.pt"))
    if not folders:
        print("no model folder with a checkpoint.pt", file=sys.stderr)
        return 2
    all_rows = []
    for f in folders:
        rows = bench_model(f, args.steps, args.student_depth or None, args.calib, args.runs, args.seed,
                           args.quant_iters, args.student)
        print_table(rows)
        all_rows += rows
    if args.json:
        Path(args.json).write_text(json.dumps(all_rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
