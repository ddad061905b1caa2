"""`vitascope holo simulate | autofocus | reconstruct | calibrate | bench`. Bad input raises BadInput
(app/cli.py prints its one line and exits 2); `--json` writes only JSON to stdout."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import BadInput, VitascopeError
from app.core.validate import check_output_file

from .optics import Z_LIMIT_M

log = logging.getLogger(__name__)
DEFAULT_PRESET = "dhm-offaxis-10x"
MAX_SIZE = 4096  # frame side of simulate/bench, pixels
MAX_FRAMES = 100_000  # frames of simulate/bench
MAX_SEED = 2 ** 32 - 1
Z_PLAUSIBLE_FACTOR = 10  # --z beyond this many times the optics' z range is refused as a unit mistake
_NOTES: list[str] = []  # notes of the running command, printed on stderr only when it succeeds


# shared options ----------------------------------------------------------------------------------------------
def _add_optics_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optics (for inputs without them: TIFF, PNG, folders, video; else a sidecar JSON)")
    g.add_argument("--preset", default=None, help="named optics, e.g. dhm-offaxis-10x or inline-lensless")
    g.add_argument("--wavelength", type=float, default=None, metavar="M", help="wavelength in metres (6.66e-7)")
    g.add_argument("--pixel", type=float, default=None, metavar="M", help="object-space pixel in metres (5e-7)")
    g.add_argument("--mode", choices=("inline", "offaxis"), default=None)
    g.add_argument("--na", type=float, default=None, help="numerical aperture of the objective")
    g.add_argument("--background", default=None, metavar="IMAGE", help="hologram recorded without a specimen")
    g.add_argument("--sideband", choices=("+1", "-1", "auto"), default=None,
                   help="off-axis: which sideband is the object wave (-1 mirrors z; auto: from the specimen's phase)")
    g.add_argument("--z-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="defocus range to search, metres (e.g. 8e-3 18e-3 for a lensless set-up)")


def _optics_overrides(args: argparse.Namespace) -> dict[str, Any] | None:
    from .optics import preset

    d: dict[str, Any] = {}
    if args.preset:
        d.update(preset(args.preset).optics.to_dict())
    for key, attr in (("wavelength_m", "wavelength"), ("pixel_size_m", "pixel"), ("mode", "mode"), ("na", "na"),
                      ("sideband", "sideband")):
        v = getattr(args, attr, None)
        if v is not None:
            d[key] = v
    zr = getattr(args, "z_range", None)
    if zr is not None:
        lo, hi = zr
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi and max(abs(lo), abs(hi)) <= 1.0):
            raise BadInput(f"--z-range {lo:g} {hi:g}: give LO < HI in metres (e.g. -4.6e-5 4.6e-5)")
        d["z_range_m"] = (float(lo), float(hi))
    return {k: v for k, v in d.items() if v is not None} or None


def _read(args: argparse.Namespace) -> Any:
    """The input stack (HoloStack), every frame validated (rank, NaN, blank, saturated); frames of a stack too
    large for memory are read lazily and validated as they are read (`_frame`), the first one here."""
    from .checks import check_frame
    from .hdf5 import LazyFrames
    from .readers import read_input

    if getattr(args, "model", None) is not None and not args.model.strip():
        raise BadInput("--model: empty; give an installed model id (see `vitascope models list`) or a model folder")
    stack = read_input(args.input, _optics_overrides(args), args.background)
    if stack.holograms.ndim != 3:
        raise BadInput(f"{args.input}: expected 2-D frames, got shape {stack.holograms.shape}")
    lazy = isinstance(stack.holograms, LazyFrames)
    for i, frame in enumerate(stack.holograms[:1] if lazy else stack.holograms):
        check_frame(frame, f"{args.input}: frame {i}")
    return stack


def _frame(args: argparse.Namespace, stack: Any, i: int) -> np.ndarray:
    """Frame i of the input, validated (again: cheap for frames in memory, the first check for lazy ones)."""
    from .checks import check_frame

    return check_frame(stack.holograms[i], f"{args.input}: frame {i}")


def _note(text: str) -> None:
    """A note for stderr, printed when the command succeeds (a refusal is its one error line, nothing else)."""
    _NOTES.append(text)


def _notes_on_success(cmd: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(cmd)
    def run(args: argparse.Namespace) -> int:
        _NOTES.clear()
        try:
            code = cmd(args)
        except BaseException:
            _NOTES.clear()
            raise
        for text in _NOTES if code == 0 else ():
            sys.stderr.write(f"vitascope: note: {text}\n")
        _NOTES.clear()
        return code
    return run


def _int_option(name: str, value: int, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise BadInput(f"{name} must be between {lo} and {hi}, got {value}")
    return value


# commands ----------------------------------------------------------------------------------------------------
def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("holo", help="digital holographic microscopy (simulate, autofocus, reconstruct...)")
    sub = p.add_subparsers(dest="holo_cmd", required=True)

    s = sub.add_parser("simulate", help="a labelled stack of simulated holograms (HDF5 stack, see hdf5.py)")
    s.add_argument("--out", required=True, help="output .h5 file")
    s.add_argument("--n", type=int, default=16, help="number of holograms")
    s.add_argument("--size", type=int, default=512, help="frame side in pixels")
    s.add_argument("--mode", choices=("inline", "offaxis"), default=None, help="default: the preset's")
    s.add_argument("--preset", default=DEFAULT_PRESET)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--kinds", default=None, help="comma-separated object kinds (default: the training kinds)")
    s.add_argument("--sideband", choices=("+1", "-1", "random"), default=None,
                   help="reference-beam tilt of the simulated microscope (recorded as session_sideband, not stated "
                        "in the optics; default +1)")
    s.set_defaults(func=simulate_cmd)

    a = sub.add_parser("autofocus", help="z of every frame (vit, vit+refine or sweep)")
    a.add_argument("input", help="HDF5 stack, TIFF, PNG, image folder, Koala-style sequence folder or video")
    a.add_argument("--model", default=None, help="installed model id or model folder (default: by optics)")
    a.add_argument("--method", choices=("auto", "vit", "vit+refine", "sweep"), default="auto",
                   help="auto (default): the method measured best for these optics, named with why on stderr/JSON")
    a.add_argument("--json", action="store_true",
                   help="JSON on stdout: {model, sideband, background, frames: [{index, z_m, method, ms, "
                        "focus_confidence, focus_in_range[, time_s]}], warnings}")
    _add_optics_flags(a)
    a.set_defaults(func=autofocus_cmd)

    r = sub.add_parser("reconstruct", help="amplitude and phase at a given z")
    r.add_argument("input")
    r.add_argument("--z", required=True, help="defocus in metres at which the holograms were recorded, or 'auto'")
    r.add_argument("--out", required=True, help=".h5 (all frames), .tif (2 pages) or .png (_amplitude/_phase)")
    r.add_argument("--frame", type=int, default=None, help="only this frame (default: all for .h5, 0 otherwise)")
    r.add_argument("--unwrap", action="store_true", help="unwrap the phase")
    r.add_argument("--json", action="store_true",
                   help="JSON on stdout: {outputs, sideband, background, frames: [{index, z_m}], warnings}")
    _add_optics_flags(r)
    r.set_defaults(func=reconstruct_cmd)

    c = sub.add_parser("calibrate", help="fine-tune the autofocus model on a labelled z-stack of your microscope")
    c.add_argument("stack", help="HDF5 stack with /z_m (stage positions)")
    c.add_argument("--out", required=True, help="folder for the new model (model.onnx + card.toml)")
    c.add_argument("--model", default=None, help="model to start from (default: by optics)")
    c.add_argument("--steps", type=int, default=300, help="fine-tuning steps")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", action="store_true",
                   help="JSON on stdout: {model, out, sideband: {value, source}, background, heldout_mae_um, "
                        "warnings}")
    c.set_defaults(func=calibrate_cmd)

    b = sub.add_parser("bench", help="live-pipeline throughput on the simulated camera")
    b.add_argument("--size", type=int, default=512)
    b.add_argument("--frames", type=int, default=100)
    b.add_argument("--method", choices=("vit", "vit+refine", "sweep", "manual"), default="vit+refine",
                   help="'manual' = refocus at a fixed z only")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=bench_cmd)


@_notes_on_success
def simulate_cmd(args: argparse.Namespace) -> int:
    from .hdf5 import write_stack
    from .objects import TRAIN_KINDS
    from .optics import preset
    from .physics import simulate_stack

    _int_option("--size", args.size, 32, MAX_SIZE)
    _int_option("--n", args.n, 1, MAX_FRAMES)
    _int_option("--seed", args.seed, 0, MAX_SEED)
    preset(args.preset)
    check_output_file(args.out)
    if args.kinds is not None and not args.kinds.strip(", "):
        raise BadInput("--kinds: empty; give comma-separated object kinds or leave it out for the training kinds")
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip()) if args.kinds else TRAIN_KINDS
    t0 = time.perf_counter()
    holos, z, bg, attrs = simulate_stack(args.preset, args.n, args.size, args.seed, args.mode, kinds,
                                         sideband=args.sideband)
    optics = preset(args.preset).optics.with_(mode=attrs["mode"], na=attrs.get("na"))
    out = write_stack(args.out, holos, optics, z, bg, attrs)
    print(f"{out}: {len(holos)} {attrs['mode']} holograms {holos.shape[2]}x{holos.shape[1]} {holos.dtype}, "
          f"z {z.min() * 1e6:.1f}…{z.max() * 1e6:.1f} µm ({time.perf_counter() - t0:.1f} s)")
    return 0


def _autofocus_model(args: argparse.Namespace, optics: Any, has_background: bool = True
                     ) -> tuple[Any, str | None, str, str]:
    """(ModelHandle or None, model id, effective method, auto's one-line reason) for `holo autofocus`, with notes
    on stderr."""
    from app.core.host import HeadlessHost

    from .auto import choose
    from .autofocus import TASK, card_mismatch
    from .engine import plan_focus

    if args.method == "sweep":
        return None, None, "sweep", ""
    host = HeadlessHost()
    if args.model and Path(args.model).is_dir():
        handle = host.zoo.open(host.zoo.resolve(args.model, TASK))
        diff = card_mismatch(handle.card, optics)
        if diff:
            _note(f"the input's optics differ from model {handle.card.id}'s card: {'; '.join(diff)}")
        if args.method == "auto":
            method, reason = choose(handle.card, has_background)
            _note(reason)
            return handle, handle.card.id, method, reason
        return handle, handle.card.id, args.method, ""
    if args.model:
        host.zoo.resolve(args.model, TASK)  # an installed autofocus model, else a one-line error
    cards = host.models(TASK)
    plan = plan_focus(cards, optics, args.method, args.model, has_background)
    for note in plan.notes + ((plan.reason,) if plan.reason else ()):
        _note(note)
    if plan.model is None:
        return None, None, "sweep", plan.reason
    return host.open_model(plan.model), plan.model, plan.method, plan.reason


@_notes_on_success
def autofocus_cmd(args: argparse.Namespace) -> int:
    stack = _read(args)  # first: a bad input is refused before the numerical libraries load

    from .autofocus import Autofocus
    from .reconstruct import Reconstructor

    handle, model_id, method, reason = _autofocus_model(args, stack.optics, stack.background is not None)
    sideband = _sideband(stack, handle.card if handle is not None else _sweep_card(args, stack.optics))
    warnings: list[str] = []
    rec = Reconstructor(stack.optics, stack.background, self_background=_self_background(stack, warnings))
    af = Autofocus(rec, handle, method=method)
    rows = []
    times = stack.attrs.get("frame_time_s")  # per-frame time of a sequence that records it (Koala timestamps)
    if times is not None and np.shape(times) != (len(stack.holograms),):
        times = None
    out_of_range: list[int] = []
    focus_notes: dict[str, list[int]] = {}
    for i in range(len(stack.holograms)):
        r = af.predict(_frame(args, stack, i))
        row = {"index": i, "z_m": float(r.z_m), "method": r.method, "ms": round(float(r.ms), 3)}
        if times is not None:
            row["time_s"] = float(times[i])
        c = r.confidence
        row.update({"focus_confidence": None if c is None else round(c.confidence, 3),
                    "focus_in_range": None if c is None else c.in_range})
        if c is not None and not c.in_range:
            out_of_range.append(i)
            focus_notes.setdefault(c.note, []).append(i)
        rows.append(row)
    if out_of_range:  # one warning line: how many frames, and the first reason
        note, idx = next(iter(focus_notes.items()))
        which = ", ".join(map(str, out_of_range[:8])) + (" …" if len(out_of_range) > 8 else "")
        text = f"{len(out_of_range)} of {len(rows)} frame(s) ({which}): {note}"
        warnings.append(text)
        _note(text)
    if args.json:
        doc = {"model": model_id, "sideband": sideband, "background": rec.background_source, "frames": rows}
        if warnings:
            doc["warnings"] = warnings
        if args.method == "auto":
            doc["auto"] = {"method": method, "why": reason}
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
        return 0
    truth = stack.z_m
    print(f"# {args.input}: {len(rows)} frames, method {method}, model {model_id or '-'}")
    print("index\tz_um\tms\tconfidence\tin_range" + ("\ttrue_um\terr_um" if truth is not None else ""))
    for row in rows:
        conf = "-" if row["focus_confidence"] is None else f"{row['focus_confidence']:.2f}"
        in_range = {None: "-", True: "yes", False: "NO"}[row["focus_in_range"]]
        line = f"{row['index']}\t{row['z_m'] * 1e6:.2f}\t{row['ms']:.1f}\t{conf}\t{in_range}"
        if truth is not None:
            zt = float(truth[row["index"]])
            line += f"\t{zt * 1e6:.2f}\t{(row['z_m'] - zt) * 1e6:+.2f}"
        print(line)
    if truth is not None:
        err = np.abs(np.array([r["z_m"] for r in rows]) - truth)
        print(f"# MAE {err.mean() * 1e6:.2f} µm, max {err.max() * 1e6:.2f} µm")
    for w in warnings:
        print(f"# warning: {w}")
    return 0


def _self_background(stack: Any, warnings: list[str]) -> str | None:
    """The Reconstructor's self_background for the input (off-axis without a background hologram: the field
    estimated from each frame), with the warning added to `warnings` and noted for stderr."""
    from .background import NO_BACKGROUND_NOTE, self_background

    mode = self_background(stack.optics, stack.background)
    if mode is not None:
        warnings.append(NO_BACKGROUND_NOTE)
        _note(NO_BACKGROUND_NOTE)
    return mode


def _sweep_card(args: argparse.Namespace, optics: Any) -> Any:
    """The model card whose calibrated sideband a sweep uses: --model's, else the installed model the optics
    select (calibrated ones first); None when there is none."""
    from app.core.card import read_card
    from app.core.host import HeadlessHost

    from .autofocus import TASK, select_model

    if optics.mode != "offaxis":
        return None
    try:
        host = HeadlessHost()
        if args.model:
            return read_card(host.zoo.resolve(args.model, TASK))
        return select_model(host.models(TASK), optics)[0]
    except VitascopeError:
        return None


def _sideband(stack: Any, card: Any) -> dict[str, Any] | None:
    """Settle the stream's sideband (stated, a calibrated card's, "auto" from the first frames, or the default) in
    stack.optics; a note on stderr when it is not stated by the stream; {value, source} for JSON (None in-line)."""
    from .sideband import resolve_auto, with_model_sideband

    if stack.optics.mode != "offaxis":
        return None
    stated = stack.optics.sideband in ("+1", "-1")
    stack.optics, source = with_model_sideband(stack.optics, card)
    if stack.optics.sideband == "auto":
        stack.optics, source = resolve_auto(stack.optics, stack.holograms[:3], stack.background)
    if not stated:
        _note(source)
    return {"value": stack.optics.sideband or "+1", "source": source}


def _parse_z(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    try:
        z = float(text)
    except ValueError:
        raise BadInput(f"--z must be a number of metres or 'auto', got {text!r}") from None
    if not np.isfinite(z) or abs(z) > Z_LIMIT_M:
        raise BadInput(f"--z {text} is not a defocus in metres: give a value within ±{Z_LIMIT_M:g} m "
                       "(e.g. 1.5e-5 for 15 µm)")
    return z


def _check_z(z: float, optics: Any) -> None:
    """Refuse a --z far outside the optics' defocus range (a unit mistake: metres given as µm or mm)."""
    lo, hi = optics.z_range_m
    limit = min(Z_LIMIT_M, Z_PLAUSIBLE_FACTOR * max(abs(lo), abs(hi)))
    if abs(z) > limit:
        unit, k = ("µm", 1e6) if limit < 1e-3 else ("mm", 1e3)
        raise BadInput(f"--z {z:g} m is outside the plausible ±{limit * k:.3g} {unit} for these optics "
                       f"({Z_PLAUSIBLE_FACTOR}× their z range {lo * k:g} … {hi * k:g} {unit}; widen it with "
                       "--z-range if it is meant)")


@_notes_on_success
def reconstruct_cmd(args: argparse.Namespace) -> int:
    z_arg = _parse_z(args.z)
    out = check_output_file(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".h5", ".hdf5", ".tif", ".tiff", ".png"):
        raise BadInput(f"{out}: output must be .h5, .tif or .png")
    for path in _png_paths(out) if suffix == ".png" else ():
        check_output_file(path)
    stack = _read(args)
    if z_arg is not None:
        _check_z(z_arg, stack.optics)

    from .focus import sweep_autofocus
    from .reconstruct import Reconstructor
    from .unwrap import unwrap_phase

    n = len(stack.holograms)
    if args.frame is not None and not 0 <= args.frame < n:
        raise BadInput(f"{args.input}: --frame {args.frame} is out of range (0…{n - 1})")
    idx = [args.frame] if args.frame is not None else (list(range(n)) if suffix in (".h5", ".hdf5") else [0])
    sideband = _sideband(stack, None)
    warnings: list[str] = []
    rec = Reconstructor(stack.optics, stack.background, self_background=_self_background(stack, warnings))
    amps, phases, zs = [], [], []
    for i in idx:
        frame = _frame(args, stack, i)
        z = z_arg if z_arg is not None else sweep_autofocus(frame, rec)[0]
        r = rec.reconstruct(frame, z)
        ph = unwrap_phase(r.phase) if args.unwrap else r.phase
        amps.append(r.amplitude.astype(np.float32))
        phases.append(ph.astype(np.float32))
        zs.append(z)
    written = _write_reconstruction(out, np.stack(amps), np.stack(phases), np.array(zs), stack, rec, idx,
                                    args.unwrap)
    if args.json:
        doc = {"outputs": [str(p) for p in written], "sideband": sideband, "background": rec.background_source,
               "frames": [{"index": i, "z_m": float(z)} for i, z in zip(idx, zs, strict=True)]}
        if warnings:
            doc["warnings"] = warnings
        json.dump(doc, sys.stdout)
        sys.stdout.write("\n")
        return 0
    for p in written:
        print(p)
    return 0


def _png_paths(out: Path) -> list[Path]:
    return [out.with_name(f"{out.stem}_amplitude.png"), out.with_name(f"{out.stem}_phase.png")]


def _write_reconstruction(out: Path, amp: np.ndarray, phase: np.ndarray, zs: np.ndarray, stack: Any, rec: Any,
                          idx: list[int], unwrapped: bool) -> list[Path]:
    import cv2
    import h5py

    suffix = out.suffix.lower()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if suffix in (".h5", ".hdf5"):
            with h5py.File(out, "w") as f:
                f.create_dataset("amplitude", data=amp, chunks=(1,) + amp.shape[1:], compression="gzip")
                f.create_dataset("phase", data=phase, chunks=(1,) + phase.shape[1:], compression="gzip")
                f.create_dataset("z_m", data=zs)
                f.create_dataset("frame_index", data=np.asarray(idx, np.int64))
                for k, v in stack.optics.to_dict().items():
                    if v is not None:
                        f.attrs[k] = np.asarray(v) if isinstance(v, list) else v
                f.attrs["pixel_size_m"] = rec.out_pixel_m  # pixel of the reconstructed images
                f.attrs["hologram_pixel_size_m"] = stack.optics.pixel_size_m
                f.attrs["phase_unwrapped"] = unwrapped
                f.attrs["background"] = rec.background_source  # recorded | frame | none
                f.attrs["source"] = str(stack.source)
            return [out]
        if suffix in (".tif", ".tiff"):
            if not cv2.imwritemulti(str(out), [amp[0], phase[0]]):
                raise OSError("the TIFF writer failed")
            return [out]
        a = amp[0] / max(float(np.percentile(amp[0], 99.9)), 1e-12)
        lo, hi = (-np.pi, np.pi) if not unwrapped else (float(phase[0].min()), float(phase[0].max()) + 1e-9)
        p = (phase[0] - lo) / (hi - lo)
        paths = _png_paths(out)
        for path, img in zip(paths, (a, p), strict=True):
            if not cv2.imwrite(str(path), (np.clip(img, 0, 1) * 65535).astype(np.uint16)):
                raise OSError("the PNG writer failed")
        return paths
    except OSError as e:
        raise VitascopeError(f"{out}: cannot write ({e})") from None


def calibrate_cmd(args: argparse.Namespace) -> int:
    try:
        from .calibrate import calibrate_cmd as run
    except ImportError as e:
        raise VitascopeError(f"holo calibrate is not available in this installation ({e})") from None
    return int(run(args) or 0)


@_notes_on_success
def bench_cmd(args: argparse.Namespace) -> int:
    from .throughput import run_bench

    _int_option("--size", args.size, 32, MAX_SIZE)
    _int_option("--frames", args.frames, 1, MAX_FRAMES)
    res = run_bench(args.size, args.frames, args.method)
    if args.json:
        json.dump(res, sys.stdout)
        sys.stdout.write("\n")
        return 0
    st = res["stages_ms"]
    print(f"live pipeline {res['size']}² off-axis, method {res['method']}"
          f"{' (requested ' + res['requested'] + ')' if res['requested'] != res['method'] else ''}, "
          f"{res['frames']} frames: {res['fps']:.1f} fps "
          f"(median {st['total']:.2f} ms/frame: " + ", ".join(f"{k} {v:.2f}" for k, v in st.items() if k != 'total')
          + f"); |z − z_true| mean {res['mae_um']:.2f} µm")
    return 0
