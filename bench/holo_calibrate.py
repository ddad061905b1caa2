"""Calibration on one microscope and one kind of sample (dhm-offaxis-10x, 512²): a labelled z-stack of the sample
(evenly stepped, as a stage records it) calibrates the shipped model (`vitascope holo calibrate`); later frames of
other specimens of the same kind, on the same microscope (same session: pupil, carrier, beams, camera), are then
focused by the shipped and by the calibrated model — vit and vit+refine error (µm) side by side, same process.

  .venv/bin/python bench/holo_calibrate.py [--kinds rbc,beads,cells] [--calib 40] [--test 40] [--steps 300]

Each kind gets its own session (seed per kind); the calibration frames are the first `--calib` frames of one
simulated run, the test frames the next `--test` (other specimens, other z)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.card import read_card  # noqa: E402
from app.core.zoo import open_folder  # noqa: E402
from plugins.holography.autofocus import Autofocus  # noqa: E402
from plugins.holography.calibrate import calibrate  # noqa: E402
from plugins.holography.hdf5 import write_stack  # noqa: E402
from plugins.holography.optics import Optics  # noqa: E402
from plugins.holography.physics import simulate_stack  # noqa: E402
from plugins.holography.reconstruct import Reconstructor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def errors(model_dir: Path, frames: np.ndarray, z: np.ndarray, optics: Optics, bg: np.ndarray, method: str
           ) -> np.ndarray:
    af = Autofocus(Reconstructor(optics, bg), open_folder(model_dir, threads=2), method)
    af.predict(frames[0])  # warm-up (carrier, plans)
    return np.array([(af.predict(f).z_m - zi) * 1e6 for f, zi in zip(frames, z, strict=True)])


def run_kind(kind: str, n_cal: int, n_test: int, steps: int, seed: int, base: Path, work: Path) -> None:
    rng = np.random.default_rng([seed, 7])
    z_cal = np.linspace(-44e-6, 44e-6, n_cal)  # a stage z-stack
    z_test = rng.uniform(-44e-6, 44e-6, n_test)
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", n_cal + n_test, 512, seed=seed, kinds=(kind,),
                                     z=np.concatenate([z_cal, z_test]))
    optics = Optics.from_dict(attrs)
    stack = write_stack(work / f"{kind}-zstack.h5", h[:n_cal], optics, z[:n_cal], bg)
    out = work / f"{kind}-calibrated"
    t0 = time.perf_counter()
    calibrate(stack, out, base, steps=steps, seed=seed)
    secs = time.perf_counter() - t0
    card = read_card(out)
    ht, zt = h[n_cal:], z[n_cal:]
    rows = [("shipped vit", errors(base, ht, zt, optics, bg, "vit")),
            ("calibrated vit", errors(out, ht, zt, optics, bg, "vit")),
            ("shipped vit+refine", errors(base, ht, zt, optics, bg, "vit+refine")),
            ("calibrated vit+refine", errors(out, ht, zt, optics, bg, "vit+refine"))]
    print(f"{kind}: calibration on {n_cal} frames, {steps} steps (kept step {card.provenance['kept_step']}), "
          f"{secs:.0f} s; refine bias "
          f"{card.extra['refine']['bias_m'] * 1e6:+.2f} µm; the stack's own held-out frames: vit MAE "
          f"{card.metric('base_vit_mae_um'):.2f} → {card.metric('vit_mae_um'):.2f} µm, vit+refine "
          f"{card.metric('vit_refine_mae_um_uncorrected'):.2f} → {card.metric('vit_refine_mae_um'):.2f} µm; "
          f"test {n_test} frames (other specimens, same microscope)")
    ref = np.abs(rows[2][1]).mean()
    for name, e in rows:
        a = np.abs(e)
        print(f"  {name:22s} MAE {a.mean():5.2f} µm  median {np.median(a):5.2f}  max {a.max():5.2f}  bias "
              f"{e.mean():+5.2f}   MAE vs shipped vit+refine {a.mean() / ref:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="rbc,beads,cells")
    ap.add_argument("--calib", type=int, default=40)
    ap.add_argument("--test", type=int, default=40)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--model", default=str(ROOT / "plugins" / "holography" / "models" / "holo-autofocus-tvit"))
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        for i, kind in enumerate(k for k in a.kinds.split(",") if k):
            run_kind(kind, a.calib, a.test, a.steps, a.seed + i, Path(a.model), Path(tmp))


if __name__ == "__main__":
    main()
