"""Classical autofocus: the sweep finds the simulated z, refinement stays local, metrics and ROI."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.holography.focus import METRICS, get_metric, refine_autofocus, sweep_autofocus
from plugins.holography.optics import Optics
from plugins.holography.physics import simulate_stack
from plugins.holography.reconstruct import Reconstructor

CASES = [("usaf", -35e-6, 0, 0.25, 10), ("siemens", 12e-6, 1, 0.28, -60), ("usaf", 30e-6, 2, 0.3, 85),
         ("dots", -8e-6, 3, 0.27, 45)]


@pytest.mark.parametrize("kind, z, seed, carrier, angle", CASES)
def test_sweep_finds_the_simulated_z(kind, z, seed, carrier, angle, offaxis_frame):
    holo, bg, o, _ = offaxis_frame(kind, z, size=256, seed=seed, carrier_cpp=carrier, angle_deg=angle)
    zf, curve, ms = sweep_autofocus(holo, Reconstructor(o, bg))
    assert abs(zf - z) < 1e-6
    assert curve.shape[1] == 2 and curve[:, 0].min() >= -46e-6 and curve[:, 0].max() <= 46e-6 and ms > 0


def test_a_point_focuses_at_its_z(offaxis_frame):
    holo, bg, o, _ = offaxis_frame("point", 25e-6, size=256, seed=5, carrier_cpp=0.3, angle_deg=0)
    rec = Reconstructor(o, bg)
    zf, _, _ = sweep_autofocus(holo, rec, roi=(96, 96, 64, 64))
    assert abs(zf - 25e-6) < 1.5e-6
    r = rec(holo, zf)
    cy, cx = np.array(r.amplitude.shape) // 2
    dip = r.amplitude[cy - 4:cy + 5, cx - 4:cx + 5].min()
    assert dip < 0.6 * np.median(r.amplitude)  # the absorbing point is sharp at the found z


def test_sweep_on_a_simulated_stack_without_background():
    h, z, _, attrs = simulate_stack("dhm-offaxis-10x", 3, 256, seed=11, kinds=("usaf", "siemens"))
    rec = Reconstructor(Optics.from_dict(attrs))
    errs = [abs(sweep_autofocus(h[i], rec)[0] - z[i]) for i in range(3)]
    assert max(errs) < 2e-6


def test_refine_searches_only_near_the_guess(offaxis_frame):
    holo, bg, o, _ = offaxis_frame("usaf", 10e-6, size=256, seed=4, carrier_cpp=0.28)
    rec = Reconstructor(o, bg)
    zf, curve, ms = refine_autofocus(holo, rec, z0=13e-6, half_width=6e-6)
    assert abs(zf - 10e-6) < 1e-6
    assert curve[:, 0].min() >= 7e-6 - 1e-12 and curve[:, 0].max() <= 19e-6 + 1e-12
    zf2, curve2, _ = refine_autofocus(holo, rec, z0=-30e-6, half_width=5e-6)  # a wrong guess stays wrong, locally
    assert -35e-6 - 1e-12 <= zf2 <= -25e-6 + 1e-12


def test_complex_field_input_and_roi(offaxis_frame):
    holo, bg, o, _ = offaxis_frame("siemens", -20e-6, size=256, seed=6, carrier_cpp=0.3)
    rec = Reconstructor(o, bg)
    field, shift = rec.plane_field(holo)
    assert shift == (0.0, 0.0)
    zf, _, _ = sweep_autofocus(field, rec)
    assert abs(zf + 20e-6) < 1e-6
    zr, _, _ = sweep_autofocus(holo, rec, roi=(64, 64, 128, 128))
    assert abs(zr + 20e-6) < 1.5e-6
    with pytest.raises(BadInput, match="ROI"):
        sweep_autofocus(holo, rec, roi=(250, 250, 64, 64))


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metrics_run_on_complex_and_real(name):
    rng = np.random.default_rng(0)
    u = (1 + 0.1 * rng.normal(size=(48, 48)) + 0.1j * rng.normal(size=(48, 48))).astype(np.complex64)
    m = get_metric(name)
    assert np.isfinite(m.fn(u)) and np.isfinite(m.fn(np.abs(u))) and m.sense in (1, -1)


def test_unknown_metric_is_bad_input():
    with pytest.raises(BadInput, match="unknown focus metric"):
        get_metric("sharpness9000")


def test_realness_metrics_are_one_at_focus_of_thin_objects():
    """A transmittance exp((−κ + ik·Δn)·h): its log is one-phase for any phase depth (logrealness_clip = 1), its
    scattered wave only for weak objects; defocus (a quadratic spectral phase) lowers both."""
    yy, xx = np.mgrid[-32:32, -32:32] / 10.0
    h = np.exp(-((yy - 0.7) ** 2 + xx ** 2)) + 0.6 * np.exp(-((yy + 1.5) ** 2 + (xx - 1) ** 2) / 0.5)
    c = -0.05 + 1j * 4.0  # strong phase (4 rad peaks), proportional absorption
    t = np.exp(c * h).astype(np.complex64)
    weak = np.exp(0.02 * c * h).astype(np.complex64)
    lr, rc = get_metric("logrealness_clip"), get_metric("realness_clip")
    assert lr.sense == rc.sense == 1
    assert lr.fn(t) > 0.999 and rc.fn(weak) > 0.999
    assert rc.fn(t) < 0.95  # the scattered wave of a strong phase object is not one-phase
    f = np.fft.fftfreq(64)
    blur = np.exp(1j * 400 * (f[:, None] ** 2 + f[None, :] ** 2)).astype(np.complex64)
    out = np.fft.ifft2(np.fft.fft2(t) * blur).astype(np.complex64)
    assert lr.fn(out) < lr.fn(t) - 0.05
    assert np.isfinite(lr.fn(np.zeros((8, 8), np.complex64)))
