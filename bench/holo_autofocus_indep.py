"""Autofocus on held-out microscopes of two forward models, on the same frames in one run: the training simulator
(held-out kinds and carriers, both reference tilts) and the independent one (bench/holo_indep_sim.py). Per
microscope the sign of z is calibrated first from `--calib` extra frames with known z (sideband.sign_from_stack);
then sweep, vit, vit+refine (and PyHoloscope find_focus when importable) on the other frames. Reports MAE / median /
max error, median ms per frame and the ratios to the sweep, against the targets: vit MAE ≤ 1.5 µm at ≤ 0.5× the
sweep's time; vit+refine MAE ≤ 1.05× the sweep's, max ≤ 3 µm, ≤ 0.6× the sweep's time.

    OMP_NUM_THREADS=1 .venv/bin/python bench/holo_autofocus_indep.py --scopes 6 --frames 4 --json out.json
    (PyHoloscope: PYTHONPATH=<folder with pyholoscope 1.1.3> ...; --no-background: frames without a background)

Frames without a background: --self-background frame estimates the background field from each frame (Reconstructor
self_background; "none" = normalised by the frame's mean only).
--one-by-one: every evaluated frame comes from its own microscope (its own carrier, beams, camera), without a
background and without a calibration stack — holograms dropped in one at a time; the sign of z is then given
(the truth, as a one-bit calibration would) so that the figure measures the background path alone."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("VITASCOPE_FFT", "scipy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from app.core.zoo import open_folder  # noqa: E402
from plugins.holography.autofocus import Autofocus  # noqa: E402
from plugins.holography.dataset import HELDOUT_ANGLE_SECTORS, HELDOUT_CARRIER_BANDS  # noqa: E402
from plugins.holography.objects import HELDOUT_KINDS  # noqa: E402
from plugins.holography.optics import Optics  # noqa: E402
from plugins.holography.physics import simulate_stack  # noqa: E402
from plugins.holography.reconstruct import Reconstructor  # noqa: E402
from plugins.holography.sideband import sign_from_stack  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[1] / "plugins" / "holography" / "models" / "holo-autofocus-tvit"
METHODS = ("sweep", "vit", "vit+refine")
TARGETS = {"vit_mae_um": 1.5, "vit_time_ratio": 0.5, "refine_mae_ratio": 1.05, "refine_max_um": 3.0,
           "refine_time_ratio": 0.6}

try:
    import pyholoscope as pyh
except ImportError:  # optional comparison
    pyh = None


def training_scopes(n: int, per: int, size: int, seed: int):
    """(name, frames, z, background, optics attrs, true sideband) of held-out stacks of the training simulator."""
    for k in range(n):
        band = HELDOUT_CARRIER_BANDS[k % len(HELDOUT_CARRIER_BANDS)]
        sector = HELDOUT_ANGLE_SECTORS[k % len(HELDOUT_ANGLE_SECTORS)]
        h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", per, size, seed=seed * 1000 + k, kinds=HELDOUT_KINDS,
                                         carrier_cpp=band, carrier_angle_deg=sector, sideband="random")
        yield f"train-sim{k}", h, z, bg, attrs, str(attrs["session_sideband"]), attrs["frame_kinds"].split(",")


def independent_scopes(n: int, per: int, size: int, seed: int):
    from bench.holo_indep_sim import Z_RANGE_M, draw_microscope, render_frame

    for k in range(n):
        rng = np.random.default_rng([seed, 31, k])
        scope = draw_microscope(rng, size)
        frames = [render_frame(scope, rng, float(rng.uniform(*Z_RANGE_M))) for _ in range(per)]
        yield (f"indep{k}", np.stack([f.hologram for f in frames]), np.array([f.z_m for f in frames]),
               scope.background(rng), scope.optics_attrs(), scope.sideband, [f.kind for f in frames])


def one_by_one_frames(sim: str, n: int, size: int, seed: int):
    """(name, frame, z, optics attrs, true sideband, kind) of n frames, each from its own microscope."""
    if sim == "training":
        h, z, _, attrs = simulate_stack("dhm-offaxis-10x", n, size, seed=seed * 1000 + 500, kinds=HELDOUT_KINDS,
                                         per_frame_optics=True, sideband="random")
        sides, kinds = attrs["frame_sideband"].split(","), attrs["frame_kinds"].split(",")
        base = {k: attrs[k] for k in ("wavelength_m", "pixel_size_m", "mode", "medium_index", "z_range_m")}
        for i in range(n):
            yield f"train-frame{i}", h[i], float(z[i]), {**base, "na": float(attrs["frame_na"][i])}, sides[i], kinds[i]
        return
    from bench.holo_indep_sim import Z_RANGE_M, draw_microscope, render_frame

    for k in range(n):
        rng = np.random.default_rng([seed, 37, k])
        scope = draw_microscope(rng, size)
        f = render_frame(scope, rng, float(rng.uniform(*Z_RANGE_M)))
        yield f"indep-frame{k}", f.hologram, f.z_m, scope.optics_attrs(), scope.sideband, f.kind


def run_one_by_one(a: argparse.Namespace, model) -> list[dict]:
    rows: list[dict] = []
    self_bg = None if a.self_background == "none" else a.self_background
    for sim in a.sims.split(","):
        for name, frame, zt, attrs, truth, kind in one_by_one_frames(sim, a.scopes * a.frames, a.size, a.seed):
            o = Optics.from_dict(attrs).with_(sideband=truth)
            for m in METHODS:
                af = Autofocus(Reconstructor(o, None, self_background=self_bg), None if m == "sweep" else model, m)
                r = af.predict(frame)
                rows.append({"sim": sim, "scope": name, "kind": kind, "method": m, "z_true_um": zt * 1e6,
                             "z_um": r.z_m * 1e6, "err_um": abs(r.z_m - zt) * 1e6, "ms": r.ms})
    return rows


def pyh_focus(holo, frame: np.ndarray, optics: Optics, sign: int, metric: str) -> float:
    """PyHoloscope 1.1.3 off-axis pipeline (its own carrier and demodulation) + find_focus, times `sign`: its
    sideband is its own convention, calibrated by one bit per microscope from the same calibration frames."""
    field = holo.process(frame.astype(np.float32))
    lo, hi = optics.z_range_m
    return sign * float(pyh.find_focus(field, optics.wavelength_m, holo.oa_pixel_size, (lo, hi), metric))


def summarize(rows: list[dict]) -> dict:
    out: dict = {}
    by = defaultdict(list)
    for r in rows:
        by[r["method"]].append(r)
    for m, rs in by.items():
        e = np.array([r["err_um"] for r in rs])
        out[m] = {"n": len(rs), "mae_um": round(float(e.mean()), 3), "median_um": round(float(np.median(e)), 3),
                  "max_um": round(float(e.max()), 3), "over3_pct": round(float(np.mean(e > 3) * 100), 1),
                  "ms_median": round(float(np.median([r["ms"] for r in rs])), 2)}
    s = out.get("sweep")
    if s:
        for v in out.values():
            v["mae_ratio_to_sweep"] = round(v["mae_um"] / max(s["mae_um"], 1e-9), 3)
            v["time_ratio_to_sweep"] = round(v["ms_median"] / max(s["ms_median"], 1e-9), 3)
    return out


def targets(summary: dict) -> dict:
    v, r = summary.get("vit"), summary.get("vit+refine")
    if not v or not r or "sweep" not in summary:
        return {}
    return {"vit MAE ≤ 1.5 µm": v["mae_um"] <= TARGETS["vit_mae_um"],
            "vit time ≤ 0.5× sweep": v["time_ratio_to_sweep"] <= TARGETS["vit_time_ratio"],
            "vit+refine MAE ≤ 1.05× sweep": r["mae_ratio_to_sweep"] <= TARGETS["refine_mae_ratio"],
            "vit+refine max ≤ 3 µm": r["max_um"] <= TARGETS["refine_max_um"],
            "vit+refine time ≤ 0.6× sweep": r["time_ratio_to_sweep"] <= TARGETS["refine_time_ratio"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scopes", type=int, default=6, help="microscopes per simulator")
    ap.add_argument("--frames", type=int, default=4, help="evaluated frames per microscope")
    ap.add_argument("--calib", type=int, default=4, help="frames per microscope for the sign calibration")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--sims", default="training,independent")
    ap.add_argument("--no-background", action="store_true", help="reconstruct without the background hologram")
    ap.add_argument("--self-background", choices=("none", "frame"), default="none",
                    help="without a background: estimate the background field from each frame")
    ap.add_argument("--one-by-one", action="store_true",
                    help="every frame from its own microscope, no background, no calibration (sign given)")
    ap.add_argument("--pyh-metric", default="dark_focus")
    ap.add_argument("--json", default=None, help="write the full results here")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    model = open_folder(MODEL_DIR, threads=2)
    rows: list[dict] = []
    signs: list[dict] = []
    t_start = time.perf_counter()
    if a.one_by_one:
        a.no_background = True
        rows = run_one_by_one(a, model)
    for sim in a.sims.split(",") if not a.one_by_one else ():
        gen = (training_scopes if sim == "training" else independent_scopes)(a.scopes, a.calib + a.frames, a.size,
                                                                               a.seed)
        for name, h, z, bg, attrs, truth, kinds in gen:
            optics = Optics.from_dict(attrs)
            bg_use = None if a.no_background else bg
            cal, ev = slice(0, a.calib), slice(a.calib, None)
            try:
                fit = sign_from_stack(h[cal], z[cal], optics, bg_use)
                side, note = fit.sideband, fit.note
            except Exception as e:  # noqa: BLE001 (report and go on with +1)
                side, note = "+1", f"sign calibration failed: {e}"
            signs.append({"sim": sim, "scope": name, "true": truth, "calibrated": side, "right": side == truth,
                          "note": note})
            o = optics.with_(sideband=side)
            self_bg = None if a.self_background == "none" or bg_use is not None else a.self_background
            afs = {m: Autofocus(Reconstructor(o, bg_use, self_background=self_bg), None if m == "sweep" else model, m)
                   for m in METHODS}
            for af in afs.values():
                af.predict(h[0])  # warm-up: carrier, masks, FFT plans
            holo = None
            if pyh is not None:
                holo = pyh.Holo(mode=pyh.OFF_AXIS, wavelength=o.wavelength_m, pixel_size=o.pixel_size_m,
                                background=None if bg_use is None else bg_use.astype(np.float32),
                                relative_phase=bg_use is not None, refocus=False, cuda=False)
                holo.calib_off_axis((bg_use if bg_use is not None else h[0]).astype(np.float32))
                holo.process(h[0].astype(np.float32))
                zc = np.array([pyh_focus(holo, f, o, 1, a.pyh_metric) for f in h[cal]])
                pyh_sign = 1 if np.sum((zc - zc.mean()) * (z[cal] - z[cal].mean())) >= 0 else -1  # its own bit
            for frame, zt, kind in zip(h[ev], z[ev], kinds[a.calib:], strict=True):
                for m, af in afs.items():
                    r = af.predict(frame)
                    rows.append({"sim": sim, "scope": name, "kind": kind, "method": m, "z_true_um": zt * 1e6,
                                 "z_um": r.z_m * 1e6, "err_um": abs(r.z_m - zt) * 1e6, "ms": r.ms})
                if holo is not None:
                    t0 = time.perf_counter()
                    zf = pyh_focus(holo, frame, o, pyh_sign, a.pyh_metric)
                    ms = (time.perf_counter() - t0) * 1e3
                    rows.append({"sim": sim, "scope": name, "kind": kind, "method": f"pyholoscope:{a.pyh_metric}",
                                 "z_true_um": zt * 1e6, "z_um": zf * 1e6, "err_um": abs(zf - zt) * 1e6, "ms": ms})
            print(f"# {sim} {name}: sideband true {truth}, calibrated {side} ({note})", file=sys.stderr)
    result = {"args": vars(a), "seconds": round(time.perf_counter() - t_start, 1), "signs": signs,
              "sign_right": f"{sum(s['right'] for s in signs)}/{len(signs)}", "by_sim": {}, "rows": rows}
    for sim in [*a.sims.split(","), "both"]:
        sel = [r for r in rows if sim == "both" or r["sim"] == sim]
        summ = summarize(sel)
        result["by_sim"][sim] = {"summary": summ, "targets": targets(summ)}
    print(f"background: {'no' if a.no_background else 'yes'} (self-background {a.self_background}); "
          + ("one frame per microscope, sign given" if a.one_by_one else
             f"sign calibrated right on {result['sign_right']} microscopes") + f"; {a.frames} frames each, {a.size}²")
    for sim, d in result["by_sim"].items():
        print(f"== {sim}")
        print(f"  {'method':22s} {'MAE':>6s} {'median':>7s} {'max':>6s} {'>3µm%':>6s} {'ms':>7s} {'MAE/sw':>7s} "
              f"{'t/sw':>6s}")
        for m, v in d["summary"].items():
            print(f"  {m:22s} {v['mae_um']:6.2f} {v['median_um']:7.2f} {v['max_um']:6.2f} {v['over3_pct']:6.1f} "
                  f"{v['ms_median']:7.1f} {v.get('mae_ratio_to_sweep', math.nan):7.2f} "
                  f"{v.get('time_ratio_to_sweep', math.nan):6.2f}")
        for k, ok in d["targets"].items():
            print(f"  target {k}: {'met' if ok else 'NOT met'}")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
