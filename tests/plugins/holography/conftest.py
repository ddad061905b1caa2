"""Holography test fixtures: scipy FFTs (no background pyFFTW tuning threads competing for the 2 cores), small
simulated frames with a chosen carrier, and the real holograms in ../shared/data/holo (skipped when absent)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from plugins.holography import fftback
from plugins.holography.optics import preset
from plugins.holography.physics import Scene, camera, draw_session

HOLO_DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "holo"


@pytest.fixture(autouse=True, scope="session")
def _scipy_fft():
    mp = pytest.MonkeyPatch()
    mp.setenv("VITASCOPE_FFT", "scipy")
    fftback.clear_plans()
    yield
    mp.undo()
    fftback.clear_plans()


@pytest.fixture
def holo_data() -> Path:
    if not (HOLO_DATA / "tissue_paper_offaxis.tif").exists():
        pytest.skip("../shared/data/holo is not available")
    return HOLO_DATA


@pytest.fixture
def offaxis_frame():
    """The `make_offaxis_frame` helper, as a fixture (test folders are not packages)."""
    return make_offaxis_frame


def make_offaxis_frame(kind: str, z_m: float, size: int = 256, seed: int = 0, carrier_cpp: float = 0.25,
                  angle_deg: float = 20.0, noise: bool = True, return_scene: bool = False):
    """(hologram, background, optics, session[, scene]) of one specimen at defocus z with a chosen carrier."""
    o = preset("dhm-offaxis-10x").optics
    rng = np.random.default_rng(seed)
    a = math.radians(angle_deg)
    s = dataclasses.replace(draw_session("dhm-offaxis-10x", rng), carrier=(carrier_cpp * math.sin(a),
                                                                            carrier_cpp * math.cos(a)))
    o = o.with_(na=s.na)
    scene = Scene(o, s, (size, size), kind, rng)
    empty = Scene(o, s, (size, size), None, rng)
    level = scene.background_level()
    if not noise:
        out = scene.intensity(z_m), empty.intensity(0.0), o, s
    else:
        out = camera(scene.intensity(z_m), s, level, rng), camera(empty.intensity(0.0), s, level, rng), o, s
    return out + (scene,) if return_scene else out
