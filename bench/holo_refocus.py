"""Refocus and live-step throughput of the holography engine against PyHoloscope 1.1.3 (bench-only dependency),
measured in the same process; prints medians and ratios.

  .venv/bin/python bench/holo_refocus.py [--sizes 512,1024] [--repeats 40]

A) refocus per frame, propagator cached: uint16 frame → complex field at −z → |U|; ours vs PyHoloscope
   `Holo(mode=INLINE, depth=z, cuda=False).process` + abs (or a plain numpy AS reference without PyHoloscope).
B) live off-axis step with a new z every frame (as a per-frame autofocus gives): frame → demodulation →
   background division → refocus → amplitude + wrapped phase; ours vs PyHoloscope OFF_AXIS + refocus."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plugins.holography import fftback  # noqa: E402
from plugins.holography.optics import preset  # noqa: E402
from plugins.holography.physics import simulate_stack  # noqa: E402
from plugins.holography.propagate import Propagator  # noqa: E402
from plugins.holography.reconstruct import Reconstructor  # noqa: E402

try:
    import pyholoscope as pyh
except ImportError:  # pragma: no cover
    pyh = None


def interleaved(fns: dict[str, callable], repeats: int, warm: int = 3) -> dict[str, float]:
    """Median ms per call, the candidates interleaved so load bursts from other processes hit all alike."""
    for f in fns.values():
        for _ in range(warm):
            f()
    ts: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) * 1e3 for k, v in ts.items()}


def numpy_reference(frame: np.ndarray, h: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.ifft2(np.fft.fft2(frame.astype(np.complex64)) * h)).astype(np.float32)


def bench_refocus(n: int, repeats: int) -> None:
    o = preset("dhm-offaxis-10x").optics
    frames, z, _, _ = simulate_stack("dhm-offaxis-10x", 1, n, seed=3, mode="inline", kinds=("cells",))
    frame, z0 = frames[0], float(z[0])
    prop = Propagator((n, n), o.wavelength_m, o.pixel_size_m)
    fns = {"ours": lambda: prop.amplitude(frame, -z0)}
    fftback.tune((n, n))
    if pyh is not None:
        holo = pyh.Holo(mode=pyh.INLINE, wavelength=o.wavelength_m, pixel_size=o.pixel_size_m, depth=z0, cuda=False)
        holo.process(frame)
        fns["pyholoscope"] = lambda: np.abs(holo.process(frame))
        a, b = fns["ours"](), fns["pyholoscope"]()
        ref = "pyholoscope"
    else:
        h = prop.transfer(-z0)
        fns["numpy"] = lambda: numpy_reference(frame, h)
        a, b = fns["ours"](), fns["numpy"]()
        ref = "numpy"
    err = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    t = interleaved(fns, repeats)
    plan = fftback.get_fft((n, n))
    print(f"A refocus {n}x{n}: ours {t['ours']:.2f} ms ({plan.backend}/{plan.threads}t), {ref} {t[ref]:.2f} ms, "
          f"ratio {t['ours'] / t[ref]:.2f}x  (|Δ|/|ref| = {err:.1e})")


def bench_live(n: int, repeats: int) -> None:
    frames, z, bg, attrs = simulate_stack("dhm-offaxis-10x", 1, n, seed=5, kinds=("usaf",))
    from plugins.holography.optics import Optics

    o = Optics.from_dict(attrs)
    frame = frames[0]
    rec = Reconstructor(o, bg)
    rec_nobg = Reconstructor(o)
    rec(frame, 0.0)
    rec_nobg(frame, 0.0)
    fftback.tune(rec.out_shape)
    fftback.wait_tuning()
    zs = iter(np.linspace(-40e-6, 40e-6, 100000))  # a new z every frame: the transfer function is rebuilt each time
    fns = {"ours": lambda: rec(frame, next(zs)), "ours_nobg": lambda: rec_nobg(frame, next(zs))}
    if pyh is not None:
        holo = pyh.Holo(mode=pyh.OFF_AXIS, wavelength=o.wavelength_m, pixel_size=o.pixel_size_m, background=bg,
                        relative_phase=True, refocus=True, depth=0.0, cuda=False)
        holo.calib_off_axis(bg)
        zp = iter(np.linspace(-40e-6, 40e-6, 100000))

        def pyh_step() -> None:
            holo.depth = next(zp)
            u = holo.process(frame)
            np.abs(u)
            np.angle(u)

        pyh_step()
        fns["pyholoscope"] = pyh_step
    t = interleaved(fns, repeats)
    line = (f"B live off-axis {n}x{n} → {rec.out_shape[0]}x{rec.out_shape[1]} field: ours {t['ours']:.2f} ms "
            f"= {1e3 / t['ours']:.0f} fps (no background {1e3 / t['ours_nobg']:.0f} fps)")
    if "pyholoscope" in t:
        line += f", pyholoscope {t['pyholoscope']:.2f} ms = {1e3 / t['pyholoscope']:.0f} fps, " \
                f"ratio {t['ours'] / t['pyholoscope']:.2f}x"
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="512,1024")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("-v", action="store_true", help="log FFT backend choices")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.v else logging.WARNING)
    try:
        from importlib.metadata import version

        pyh_version = version("pyholoscope") if pyh is not None else "not installed (numpy reference)"
    except Exception:
        pyh_version = "?"
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; pyholoscope {pyh_version}; pyFFTW "
          f"{'yes' if fftback.pyfftw is not None else 'no'}; medians of {args.repeats}")
    for n in (int(s) for s in args.sizes.split(",")):
        bench_refocus(n, args.repeats)
        bench_live(n, args.repeats)


if __name__ == "__main__":
    main()
