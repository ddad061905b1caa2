"""Classical autofocus on simulated off-axis holograms of the `dhm-offaxis-10x` preset: our coarse-to-fine sweep
(every metric, or a chosen few) against PyHoloscope 1.1.3 `find_focus` (bounded Brent) on the same frames, both
on PyHoloscope's own demodulated field (`Holo.calib_off_axis` + `process`) and on ours — error (µm) and time per frame
(ms, demodulation included), in the same process.

  .venv/bin/python bench/holo_autofocus_classical.py [--stacks 8] [--per 4] [--size 512] [--metrics default]
  .venv/bin/python bench/holo_autofocus_classical.py --preset inline-lensless --stacks 4 --per 4   (errors in mm)

Each stack is one simulated session (NA 0.2–0.3, carrier 0.15–0.3 c/px in any direction, camera) with its
background; frames mix all object kinds (training and held-out) at uniform random z in −46…+46 µm."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.optimize import minimize_scalar  # noqa: E402

from plugins.holography.focus import DEFAULT_METRIC, FINE_SIDE, METRICS, _Scorers, sweep_autofocus  # noqa: E402
from plugins.holography.objects import HELDOUT_KINDS, TRAIN_KINDS  # noqa: E402
from plugins.holography.optics import Optics  # noqa: E402
from plugins.holography.physics import simulate_stack  # noqa: E402
from plugins.holography.reconstruct import Reconstructor  # noqa: E402

try:
    import pyholoscope as pyh
except ImportError:  # pragma: no cover
    pyh = None

PYH_METHODS = ("sum", "dark_focus", "brenner", "norm_var", "sobel")


def summary(name: str, err: list[float], ms: list[float]) -> str:
    e = np.asarray(err)
    return (f"{name:24s} MAE {e.mean():6.2f}  median {np.median(e):5.2f}  max {e.max():6.2f}  "
            f">3 {np.mean(e > 3) * 100:4.0f} %   {np.median(ms):7.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", type=int, default=8)
    ap.add_argument("--per", type=int, default=4, help="frames per stack")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--metrics", default="default", help="'default', 'all' or a comma list of our metrics")
    ap.add_argument("--preset", default="dhm-offaxis-10x", help="dhm-offaxis-10x (off-axis) or inline-lensless")
    ap.add_argument("--no-pyholoscope", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    mode = "inline" if args.preset == "inline-lensless" else "offaxis"
    unit, scale = ("mm", 1e3) if mode == "inline" else ("µm", 1e6)
    metrics = ([DEFAULT_METRIC[mode], "gini", "darkfocus", "min_normvar", "normvar", "dubois"]
               if args.metrics == "default" else list(METRICS) if args.metrics == "all" else args.metrics.split(","))
    use_pyh = pyh is not None and not args.no_pyholoscope
    print(f"load average {os.getloadavg()[0]:.2f}; {args.preset}: {args.stacks} stacks x {args.per} frames of "
          f"{args.size}²; errors in {unit}; pyholoscope {'1.1.3' if use_pyh else 'not used'}")
    ours = {m: ([], []) for m in metrics}
    theirs = {m: ([], []) for m in PYH_METHODS}
    theirs_our_field = {m: ([], []) for m in PYH_METHODS}
    brent: tuple[list[float], list[float]] = ([], [])  # PyHoloscope's search strategy with our default metric
    kinds_all: list[str] = []
    for s in range(args.stacks):
        holos, z, bg, attrs = simulate_stack(args.preset, args.per, args.size, seed=args.seed + s,
                                             kinds=TRAIN_KINDS + HELDOUT_KINDS)
        optics = Optics.from_dict(attrs)
        lo, hi = optics.z_range_m
        kinds_all += attrs["frame_kinds"].split(",")
        rec = Reconstructor(optics, bg)
        sweep_autofocus(holos[0], rec)  # warm-up: carrier detection, masks, FFT plans
        if use_pyh and mode == "offaxis":
            holo = pyh.Holo(mode=pyh.OFF_AXIS, wavelength=optics.wavelength_m, pixel_size=optics.pixel_size_m,
                            background=bg, relative_phase=True, refocus=False, cuda=False)
            holo.calib_off_axis(bg)
            holo.process(holos[0])
        for i in range(args.per):
            for m in metrics:
                zf, _, ms = sweep_autofocus(holos[i], rec, metric=m)
                ours[m][0].append(abs(zf - z[i]) * scale)
                ours[m][1].append(ms)
            t0 = time.perf_counter()
            sc = _Scorers(holos[i], rec, None, None, max(abs(lo), abs(hi))).make(lo, hi, FINE_SIDE)
            r = minimize_scalar(lambda zz, sc=sc: -sc.metric.sense * sc.score(zz), bounds=(lo, hi), method="bounded",
                                options={"maxiter": 10})
            brent[1].append((time.perf_counter() - t0) * 1e3)
            brent[0].append(abs(float(r.x) - z[i]) * scale)
            if use_pyh and mode == "inline":  # PyHoloscope refocuses the background-normalised hologram
                for m in PYH_METHODS:
                    t0 = time.perf_counter()
                    zf = pyh.find_focus(holos[i].astype(np.float32), optics.wavelength_m, optics.pixel_size_m,
                                        (lo, hi), m, background=bg.astype(np.float32),
                                        normalise=bg.astype(np.float32))
                    theirs[m][1].append((time.perf_counter() - t0) * 1e3)
                    theirs[m][0].append(abs(zf - z[i]) * scale)
            elif use_pyh:
                for m in PYH_METHODS:
                    t0 = time.perf_counter()
                    field = holo.process(holos[i])
                    zf = pyh.find_focus(field, optics.wavelength_m, holo.oa_pixel_size, (lo, hi), m)
                    theirs[m][1].append((time.perf_counter() - t0) * 1e3)
                    theirs[m][0].append(abs(zf - z[i]) * scale)
                    t0 = time.perf_counter()
                    field, _ = rec.plane_field(holos[i])
                    zf = pyh.find_focus(field, optics.wavelength_m, rec.out_pixel_m, (lo, hi), m)
                    theirs_our_field[m][1].append((time.perf_counter() - t0) * 1e3)
                    theirs_our_field[m][0].append(abs(zf - z[i]) * scale)
    print("ours (coarse grid + Brent in the best cell):")
    for m in metrics:
        tag = " (default)" if m == DEFAULT_METRIC[mode] else ""
        print("  " + summary(f"sweep {m}{tag}", *ours[m]))
    print("  " + summary(f"Brent whole range {DEFAULT_METRIC[mode]}", *brent) + "   (PyHoloscope's search, our metric)")
    if use_pyh:
        print("PyHoloscope find_focus (bounded Brent over the whole range, max_iter 10):")
        for m in PYH_METHODS:
            print("  " + summary(f"find_focus {m}", *theirs[m]))
        if mode == "offaxis":
            print("PyHoloscope find_focus on our demodulated field (same field as our sweep):")
            for m in PYH_METHODS:
                print("  " + summary(f"find_focus {m}", *theirs_our_field[m]))
        best = min(PYH_METHODS, key=lambda m: np.mean(theirs[m][0]))
        d = DEFAULT_METRIC[mode]
        print(f"ratio ours/PyHoloscope (best method {best}): MAE "
              f"{np.mean(ours[d][0]) / np.mean(theirs[best][0]):.2f}x, time "
              f"{np.median(ours[d][1]) / np.median(theirs[best][1]):.2f}x")
    k = np.asarray(kinds_all)
    e = np.asarray(ours[DEFAULT_METRIC[mode]][0])
    print(f"default metric MAE by kind ({unit}): " + ", ".join(
        f"{kk} {e[k == kk].mean():.2f} (n={int(np.sum(k == kk))})" for kk in sorted(set(kinds_all))))


if __name__ == "__main__":
    main()
