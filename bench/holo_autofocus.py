"""Learned vs classical autofocus on the held-out simulated off-axis set (dhm-offaxis-10x, 512², object kinds and
carrier settings not used in training): `vit`, `vit+refine`, `sweep` and PyHoloscope `find_focus`, same frames,
same process — error (µm), time per frame (ms, demodulation included) and ratios against `sweep`.

  .venv/bin/python bench/holo_autofocus.py [--model plugins/holography/models/holo-autofocus-tvit] [--stacks 8] \
      [--per 8]
  .venv/bin/python bench/holo_autofocus.py --write-card plugins/holography/models/holo-autofocus-tvit \
      --ckpt RUN/ckpt_last.pt
  .venv/bin/python bench/holo_autofocus.py --split train --refine-defaults   # tune refine settings (not held-out)
  .venv/bin/python bench/holo_autofocus.py --no-inline-term --methods sweep   # what the in-line term costs

`--refine-defaults` runs vit+refine with the code's REFINE_DEFAULTS instead of the card's [refine] (and, with
--write-card, writes them as the card's [refine]). `--write-card` adds the frame-level metrics (and the [refine] table)
to the model's card and, with --ckpt, writes the slim `checkpoint.pt` (config + weights) that calibration fine-tunes
from."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.card import read_card, write_card  # noqa: E402
from app.core.zoo import open_folder  # noqa: E402
from plugins.holography.autofocus import METHODS, REFINE_DEFAULTS, Autofocus  # noqa: E402
from plugins.holography.dataset import (  # noqa: E402
    HELDOUT_ANGLE_SECTORS,
    HELDOUT_CARRIER_BANDS,
    TRAIN_ANGLE_SECTORS,
    TRAIN_CARRIER_BANDS,
    heldout_stacks,
)
from plugins.holography.objects import HELDOUT_KINDS, TRAIN_KINDS  # noqa: E402
from plugins.holography.optics import Optics  # noqa: E402
from plugins.holography.physics import simulate_stack  # noqa: E402
from plugins.holography.reconstruct import Reconstructor, detect_carrier  # noqa: E402

try:
    import pyholoscope as pyh
except ImportError:  # pragma: no cover
    pyh = None

log = logging.getLogger("bench.holo_autofocus")
ROOT = Path(__file__).resolve().parents[1]
PYH_METHOD = "brenner"


def train_like_stacks(seed: int, n_stacks: int, per: int, size: int, inline_term: bool = True) -> list:
    """Frames like the training data (training kinds and carriers, fresh seeds): for choosing refine settings
    without looking at the held-out set."""
    out = []
    for k in range(n_stacks):
        out.append(simulate_stack("dhm-offaxis-10x", per, size, seed=seed * 1000 + k, kinds=TRAIN_KINDS,
                                  carrier_cpp=TRAIN_CARRIER_BANDS[k % len(TRAIN_CARRIER_BANDS)],
                                  carrier_angle_deg=TRAIN_ANGLE_SECTORS[(k // 3) % len(TRAIN_ANGLE_SECTORS)],
                                  inline_term=inline_term))
    return out


def run(model_dir: Path, stacks: int, per: int, size: int, seed: int, methods: list[str], use_pyh: bool,
        refine: dict | None = None, split: str = "heldout", refine_defaults: bool = False, inline_term: bool = True
        ) -> tuple[dict[str, dict], list[str], np.ndarray]:
    """Errors (µm, signed) and times (ms) per method over the held-out frames; plus frame kinds and true z."""
    handle = open_folder(model_dir, threads=2) if any(m != "sweep" for m in methods) else None
    res = {m: {"err": [], "ms": []} for m in methods + (["pyholoscope"] if use_pyh else [])}
    kinds: list[str] = []
    ztrue: list[float] = []
    sep: list[float] = []  # per frame: |carrier| / objective band NA/λ (off-axis separation, see carrier_band_ratio)
    source = heldout_stacks if split == "heldout" else train_like_stacks
    for h, z, bg, attrs in source(seed, stacks, per, size, inline_term=inline_term):
        optics = Optics.from_dict(attrs)
        kinds += attrs["frame_kinds"].split(",")
        ztrue += list(z)
        sep += [carrier_band_ratio(optics, bg)] * len(z)
        for m in methods:
            rec = Reconstructor(optics, bg)
            af = Autofocus(rec, handle, m)
            if refine_defaults:  # the code's REFINE_DEFAULTS instead of the card's [refine]
                af.refine_params = dict(REFINE_DEFAULTS)
            if refine:
                af.refine_params.update(refine)
            af.predict(h[0])  # warm-up: carrier detection, masks, FFT plans (a live stream has them)
            for frame, zi in zip(h, z, strict=True):
                r = af.predict(frame)
                res[m]["err"].append((r.z_m - zi) * 1e6)
                res[m]["ms"].append(r.ms)
        if use_pyh:
            lo, hi = optics.z_range_m
            holo = pyh.Holo(mode=pyh.OFF_AXIS, wavelength=optics.wavelength_m, pixel_size=optics.pixel_size_m,
                            background=bg, relative_phase=True, refocus=False, cuda=False)
            holo.calib_off_axis(bg)
            holo.process(h[0])
            for frame, zi in zip(h, z, strict=True):
                t0 = time.perf_counter()
                field = holo.process(frame)
                zf = pyh.find_focus(field, optics.wavelength_m, holo.oa_pixel_size, (lo, hi), PYH_METHOD)
                res["pyholoscope"]["ms"].append((time.perf_counter() - t0) * 1e3)
                res["pyholoscope"]["err"].append((zf - zi) * 1e6)
    res["_sep"] = sep  # type: ignore[assignment]
    return res, kinds, np.asarray(ztrue)


def carrier_band_ratio(optics: Optics, bg: np.ndarray | None) -> float:
    """|carrier| / (NA/λ) in the same units: below ~1.25 the reconstructor keeps no DC notch and the sideband
    overlaps the in-line (autocorrelation) term of the hologram, which then leaks into the demodulated field."""
    if not optics.na or bg is None:
        return float("nan")
    c = detect_carrier(bg, na=optics.na, wavelength_m=optics.wavelength_m, pixel_m=optics.pixel_size_m)
    return c.magnitude / (optics.na / optics.wavelength_m * optics.pixel_size_m)


SEP_BINS = ((0.0, 1.1), (1.1, 1.25), (1.25, 1.5), (1.5, np.inf))


def stats(err: list[float], ms: list[float]) -> dict[str, float]:
    e = np.abs(np.asarray(err))
    return {"mae": float(e.mean()), "median": float(np.median(e)), "max": float(e.max()),
            "bias": float(np.mean(err)), "ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90))}


def report(res: dict[str, dict], kinds: list[str]) -> dict[str, dict[str, float]]:
    sep = np.asarray(res.pop("_sep", [np.nan] * len(kinds)), float)
    out = {m: stats(r["err"], r["ms"]) for m, r in res.items()}
    ref = out.get("sweep")
    k = np.asarray(kinds)
    for m, s in out.items():
        e = np.abs(np.asarray(res[m]["err"]))
        per_kind = " ".join(f"{kk} {np.mean(e[k == kk]):.2f}" for kk in sorted(set(kinds)))
        ratio = (f"  vs sweep: MAE {s['mae'] / ref['mae']:.2f}x, time {s['ms'] / ref['ms']:.2f}x"
                 if ref and m != "sweep" else "")
        print(f"{m:12s} MAE {s['mae']:5.2f} µm  median {s['median']:5.2f}  max {s['max']:5.2f}  bias {s['bias']:+5.2f}"
              f"  {s['ms']:6.1f} ms (p90 {s['p90_ms']:.1f}){ratio}   per kind: {per_kind}")
    print("signed mean error (µm) per kind, then MAE by |carrier|/band (n frames):")
    for m in out:
        err = np.asarray(res[m]["err"])
        signed = " ".join(f"{kk} {np.mean(err[k == kk]):+.2f}" for kk in sorted(set(kinds)))
        cells = [((sep >= a) & (sep < b), a, b) for a, b in SEP_BINS]
        bins = " ".join(f"[{a:g},{b:g}) {np.mean(np.abs(err[s])):.2f} (n {int(s.sum())})"
                        for s, a, b in cells if s.any())
        print(f"  {m:12s} {signed}   |c|/B: {bins}")
    return out


def write_card_metrics(model_dir: Path, out: dict[str, dict[str, float]], n: int, seed: int, stacks: int, per: int,
                       refine: dict | None, ckpt: Path | None, note: str | None = None,
                       refine_defaults: bool = False) -> None:
    """Frame-level held-out metrics (+ [refine], checkpoint.pt) into the card; model.onnx is untouched."""
    card = read_card(model_dir)
    where = (f"plugins.holography.dataset:heldout_stacks seed={seed} ({stacks} stacks x {per} frames, 512², kinds "
             f"{'/'.join(HELDOUT_KINDS)}, carriers |c| {HELDOUT_CARRIER_BANDS} c/px at {HELDOUT_ANGLE_SECTORS} deg; "
             "held-out)")
    names = {"vit": "vit", "vit+refine": "vit_refine", "sweep": "sweep", "pyholoscope": "pyholoscope_find_focus"}
    unit_um = float(card.preprocess.get("output_scale_m", 1e-6)) * 1e6
    keep = []
    for m in card.metrics:  # the export's crop-level held-out metrics are in label units: give them in µm
        if m.get("name") in ("mae", "rmse", "mae_fp32", "rmse_fp32"):
            m = {**m, "name": f"crop_{m['name']}_um", "value": round(float(m["value"]) * unit_um, 4),
                 "note": "per 64-px crop (no averaging over crops), as evaluated when the model was made"}
        frame_level = str(m.get("name", "")).endswith(("_mae_um", "_median_um", "_max_um", "_ms"))
        if not frame_level or m["name"].startswith("crop_"):
            keep.append(m)
    load = os.getloadavg()[0]
    for m, s in out.items():
        for key, suffix in (("mae", "_mae_um"), ("median", "_median_um"), ("max", "_max_um"), ("ms", "_ms")):
            entry = {"name": names[m] + suffix, "value": round(s[key], 4), "dataset": where, "seed": seed, "n": n}
            if key == "ms":
                entry["note"] = (f"median ms per 512² frame incl. demodulation, shared 2-core machine, load average "
                                 f"{load:.1f} at the end of the run (timings are inflated by other jobs)")
            keep.append(entry)
    card.metrics = keep
    summary = ""
    if all(k in out for k in ("vit", "vit+refine", "sweep")):
        v, r, w = out["vit"], out["vit+refine"], out["sweep"]
        summary = (f" Measured on the held-out simulated set ({n} frames, unseen kinds and carriers): vit MAE "
                   f"{v['mae']:.2f} µm (max {v['max']:.1f}), vit+refine MAE {r['mae']:.2f} µm (median "
                   f"{r['median']:.2f}, max {r['max']:.1f}), sweep MAE {w['mae']:.2f} µm (max {w['max']:.1f}); "
                   "see [[metrics]].")
    card.description = card.description.split(" Measured on the held-out")[0] + summary
    if (model_dir / "recipe.toml").is_file():
        card.provenance["recipe"] = "recipe.toml"
    if note:
        card.provenance["training_path"] = note
    base = {} if refine_defaults else dict(card.extra.get("refine", {}))
    card.extra["refine"] = {**REFINE_DEFAULTS, **base, **(refine or {})}
    card.extra["refine"] = {k: v for k, v in card.extra["refine"].items() if v is not None}
    if ckpt is not None:
        import torch

        from app.train.checkpoint import load_checkpoint

        c = load_checkpoint(ckpt)
        slim = {"format": c["format"], "version": c["version"], "config": c["config"], "model": c["model"],
                "model_name": c.get("model_name"), "step": c.get("step"), "total": c.get("total"),
                "train_seconds": c.get("train_seconds"), "spec": c.get("spec")}
        torch.save(slim, model_dir / "checkpoint.pt")
        card.provenance["checkpoint"] = "checkpoint.pt (config + weights, for calibration fine-tuning)"
    write_card(model_dir, card)
    print(f"card updated: {model_dir / 'card.toml'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "plugins" / "holography" / "models" / "holo-autofocus-tvit"))
    ap.add_argument("--stacks", type=int, default=8)
    ap.add_argument("--per", type=int, default=8, help="frames per stack (one session/carrier per stack)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--refine-strategy", default=None,
                    help="grid | residual | search | residual+search | residual+grid (default: card's)")
    ap.add_argument("--refine-metric", default=None)
    ap.add_argument("--refine-blend", type=float, default=None)
    ap.add_argument("--refine-n-grid", type=int, default=None)
    ap.add_argument("--refine-half-width-dof", type=float, default=None)
    ap.add_argument("--refine-n-fine", type=int, default=None)
    ap.add_argument("--refine-n-crops", type=int, default=None, help="crops for vit+refine (default: card's)")
    ap.add_argument("--refine-sweep-if-spread", type=float, default=None, help="metres")
    ap.add_argument("--refine-field", default=None, help="fullband | model: the field the physics search runs on")
    ap.add_argument("--refine-alt-metric", default=None, help="'' to disable")
    ap.add_argument("--refine-coarse-side", type=int, default=None, help="0 = full resolution coarse planes")
    ap.add_argument("--refine-guard-metric", default=None, help="'' to disable")
    ap.add_argument("--refine-coarse", default=None, help="spectral | grid: the coarse stage of the grid search")
    ap.add_argument("--refine-polish-sweep", type=int, choices=(0, 1), default=None)
    ap.add_argument("--refine-spectral-trust", type=float, default=None,
                    help="believe the spectral coarse peak within this fraction of the window of the model's z")
    ap.add_argument("--refine-defaults", action="store_true",
                    help="start from the code's REFINE_DEFAULTS instead of the card's [refine] (also when writing it)")
    ap.add_argument("--no-pyholoscope", action="store_true")
    ap.add_argument("--split", choices=("heldout", "train"), default="heldout",
                    help="'train': training kinds/carriers with fresh seeds (to choose refine settings)")
    ap.add_argument("--no-inline-term", action="store_true",
                    help="diagnosis: simulate idealised holograms without the object's in-line |O|² term")
    ap.add_argument("--write-card", default=None, help="model folder whose card gets the metrics")
    ap.add_argument("--ckpt", default=None, help="training checkpoint to slim into <model>/checkpoint.pt")
    ap.add_argument("--note", default=None, help="provenance.training_path text for the card")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("VITASCOPE_FFT", "scipy")
    methods = args.methods.split(",")
    refine = {k: v for k, v in (("strategy", args.refine_strategy), ("metric", args.refine_metric),
                                ("half_width_dof", args.refine_half_width_dof), ("blend", args.refine_blend),
                                ("n_grid", args.refine_n_grid), ("n_fine", args.refine_n_fine),
                                ("n_crops", args.refine_n_crops), ("sweep_if_spread_m", args.refine_sweep_if_spread),
                                ("field", args.refine_field), ("alt_metric", args.refine_alt_metric),
                                ("coarse_side", args.refine_coarse_side), ("guard_metric", args.refine_guard_metric),
                                ("coarse", args.refine_coarse), ("spectral_trust", args.refine_spectral_trust),
                                ("polish_sweep", None if args.refine_polish_sweep is None
                                 else bool(args.refine_polish_sweep)))
              if v is not None}
    use_pyh = pyh is not None and not args.no_pyholoscope
    model_dir = Path(args.write_card or args.model)
    kinds = HELDOUT_KINDS if args.split == "heldout" else TRAIN_KINDS
    print(f"load average {os.getloadavg()[0]:.2f}; {args.split}: {args.stacks} stacks x {args.per} frames of "
          f"{args.size}², kinds {','.join(kinds)}, seed {args.seed}; model {model_dir.name}; "
          f"pyholoscope {'find_focus ' + PYH_METHOD if use_pyh else 'not used'}"
          f"{'; holograms WITHOUT the in-line term (diagnosis)' if args.no_inline_term else ''}")
    if args.write_card and (args.split != "heldout" or args.no_inline_term):
        ap.error("--write-card records held-out metrics; drop --split train / --no-inline-term")
    res, kinds, _ = run(model_dir, args.stacks, args.per, args.size, args.seed, methods, use_pyh, refine, args.split,
                        args.refine_defaults, not args.no_inline_term)
    out = report(res, kinds)
    if args.write_card:
        write_card_metrics(model_dir, out, len(kinds), args.seed, args.stacks, args.per, refine,
                           Path(args.ckpt) if args.ckpt else None, args.note, args.refine_defaults)


if __name__ == "__main__":
    main()
