"""Live-pipeline throughput (`vitascope holo bench`): simulated off-axis frames through the engine — demodulation →
z → refocus → amplitude + phase — timed per stage on a headless host. Qt-free."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from app.core.errors import ModelError
from app.core.frames import Frame
from app.core.host import HeadlessHost

from .engine import HoloEngine
from .fftback import wait_tuning

log = logging.getLogger(__name__)


def _check_model(engine: HoloEngine, method: str) -> None:
    """A method that needs a model ran without one (it could not be opened, or none is installed for these
    optics): an error, never a silent sweep timed under the requested method's name."""
    if method in ("manual", "sweep") or engine.plan.method == method:
        return
    failed = dict(engine._failed_models)
    if failed:
        mid, why = next(iter(failed.items()))
        raise ModelError(f"holo bench --method {method}: model {mid} cannot be used ({why})")
    raise ModelError(f"holo bench --method {method}: no installed autofocus model for the simulated "
                     f"{engine.preset_name} optics (see `vitascope models list`)")


def run_bench(size: int = 512, frames: int = 100, method: str = "vit+refine", distinct: int = 8,
              seed: int = 0) -> dict[str, Any]:
    """Process `frames` frames (cycling `distinct` pre-simulated ones; simulation is not timed) and report fps,
    median stage times and the mean |z − z_true|. `method` 'manual' refocuses at the true z (no autofocus)."""
    host = HeadlessHost()
    engine = HoloEngine(host, method="sweep" if method == "manual" else method)
    engine.set_smoothing(False)
    cam = engine.demo_source(fps=20.0, size=size, seed=seed, paced=False)
    engine.attach(cam)
    sim = [cam.read() for _ in range(max(1, min(distinct, frames)))]
    sim = [f for f in sim if f is not None]

    def frame(i: int) -> Frame:
        f = sim[i % len(sim)]
        return Frame(i, f.data, meta=dict(f.meta))

    try:
        for i in range(3):  # warm-up: carrier detection, plans, FFT backend timing
            if method == "manual":
                engine.set_manual_z(sim[i % len(sim)].meta["z_true_m"])
            engine.process(frame(i))
        _check_model(engine, method)
    except BaseException:
        engine.close()
        raise
    wait_tuning(60)
    stages: dict[str, list[float]] = {}
    errors = []
    t0 = time.perf_counter()
    for i in range(frames):
        f = frame(i)
        if method == "manual":
            engine.set_manual_z(f.meta["z_true_m"])
        r = engine.process(f)
        for k, v in r.timings_ms.items():
            stages.setdefault(k, []).append(v)
        if r.z_true_m is not None:
            errors.append(abs(r.z_m - r.z_true_m))
    elapsed = time.perf_counter() - t0
    engine.close()
    return {"size": size, "frames": frames, "requested": method,
            "method": "manual" if method == "manual" else engine.plan.method, "model": engine.plan.model,
            "fps": frames / elapsed, "stages_ms": {k: float(np.median(v)) for k, v in stages.items()},
            "mae_um": float(np.mean(errors) * 1e6) if errors else None}
