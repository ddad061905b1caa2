"""Reconstruction: carrier detection in any direction, demodulation against the simulator's field, input
validation, in-line normalisation, phase unwrapping."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.holography.optics import Optics, preset
from plugins.holography.reconstruct import Reconstructor, check_frame, detect_carrier
from plugins.holography.unwrap import unwrap_phase


@pytest.mark.parametrize("angle", [0, 30, 60, 90, -45, -80])
def test_carrier_found_in_any_direction(angle, offaxis_frame):
    holo, bg, o, s = offaxis_frame("cells", 10e-6, size=128, seed=angle % 7, carrier_cpp=0.22, angle_deg=angle)
    c = detect_carrier(holo, na=o.na, wavelength_m=o.wavelength_m, pixel_m=o.pixel_size_m)
    assert np.hypot(c.fy - s.carrier[0], c.fx - s.carrier[1]) < 0.5 / 128  # sub-bin
    assert c.radius > 0 and c.snr > 30


def test_demodulation_recovers_the_object_field(offaxis_frame):
    """Noise-free hologram at z → reconstruct at z → the simulator's in-focus (pupil-limited) object field."""
    holo, bg, o, s, scene = offaxis_frame("usaf", 20e-6, size=128, seed=2, carrier_cpp=0.3, noise=False,
                                          return_scene=True)
    rec = Reconstructor(o, bg, crop=False)
    r = rec(holo, 20e-6, keep_field=True)
    truth = scene.field(0.0) / scene._illum
    inner = (slice(16, -16), slice(16, -16))
    a, b = r.field[inner], truth[inner]
    corr = np.abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b))
    assert corr > 0.97
    assert r.amplitude.shape == (128, 128) and r.phase.shape == (128, 128)


def test_crop_keeps_the_band_and_reports_the_pixel(offaxis_frame):
    holo, bg, o, s = offaxis_frame("cells", 0.0, size=256, seed=1, carrier_cpp=0.3)
    rec = Reconstructor(o, bg)
    r = rec(holo, 5e-6)
    assert r.amplitude.shape == rec.out_shape and rec.out_shape[0] < 256
    assert r.pixel_size_m == pytest.approx(o.pixel_size_m * 256 / rec.out_shape[0])
    rec.redetect()
    assert rec.carrier is None
    rec(holo, 0.0)
    assert rec.carrier is not None


@pytest.mark.parametrize("frame, message", [
    (np.zeros((4, 64, 64)), "2-D"),
    (np.full((64, 64), np.nan, np.float32), "NaN"),
    (np.zeros((64, 64), np.uint16), "zero"),
    (np.full((64, 64), 4095, np.uint16), "same value"),
    (np.where(np.arange(64 * 64).reshape(64, 64) % 4, 255, 3).astype(np.uint8), "saturated"),
    (np.ones((8, 8)), "too small"),
])
def test_bad_frames_are_one_line_errors(frame, message):
    with pytest.raises(BadInput, match=message) as e:
        check_frame(frame)
    assert "\n" not in str(e.value)
    rec = Reconstructor(preset("dhm-offaxis-10x").optics)
    with pytest.raises(BadInput):
        rec(frame, 0.0)


def test_inline_frame_is_not_offaxis():
    o = preset("inline-lensless").optics
    rng = np.random.default_rng(0)
    frame = (1000 + 50 * rng.normal(size=(128, 128))).astype(np.uint16)
    with pytest.raises(BadInput, match="no off-axis carrier"):
        Reconstructor(o.with_(mode="offaxis"))(frame, 0.0)


def test_inline_background_normalisation():
    from plugins.holography.physics import simulate_stack

    h, z, bg, attrs = simulate_stack("inline-lensless", 1, 128, seed=3, kinds=("beads",))
    o = Optics.from_dict(attrs)
    for background in (bg, None):
        rec = Reconstructor(o, background)
        r = rec(h[0], float(z[0]))
        assert np.isfinite(r.amplitude).all() and 0.5 < np.median(r.amplitude) < 1.5
        assert rec.propagator.pad == 2.0  # the band limit bites at mm distances: padded


def test_unwrap_recovers_a_smooth_phase():
    y, x = np.mgrid[0:96, 0:128] / 64
    true = 25 * ((x - 0.8) ** 2 + (y - 0.6) ** 2) + 2 * np.sin(5 * x)
    u = unwrap_phase(np.angle(np.exp(1j * true)))
    d = u - true
    assert np.abs(d - d.mean()).max() < 1e-3


def test_hermitian_gather_reads_the_full_spectrum_from_the_half_one():
    from plugins.holography.reconstruct import HermitianGather

    rng = np.random.default_rng(3)
    a = rng.normal(size=(48, 40)).astype(np.float32)
    full, half = np.fft.fft2(a), np.fft.rfft2(a)
    rows = (np.arange(-7, 9) + 30)[:, None]  # a window straddling kx = 0, wrapping in ky and reaching kx < 0
    cols = (np.arange(-6, 6) + 2)[None, :]
    rows, cols = (x.copy() for x in np.broadcast_arrays(rows, cols))
    gather = HermitianGather(half.shape, rows, cols, a.shape[1])
    got = gather(half.astype(np.complex64))
    assert got.shape == rows.shape and gather.neg is not None
    np.testing.assert_allclose(got, full[rows % 48, cols % 40], rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError):
        gather(half[:-1])
