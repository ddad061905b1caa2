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


def test_fused_realness_metrics_equal_the_clipped_complex_formula():
    """The float32 fused metrics give _one_phase(_clip_rms(·)) of the scattered wave and of the log field, on strided
    views (the search's inner boxes) with clipped pixels present."""
    from plugins.holography.focus import CLIP_RMS, _clip_rms, _one_phase

    rng = np.random.default_rng(3)
    for _ in range(20):
        big = rng.normal(size=(90, 90)) + 1j * rng.normal(size=(90, 90))
        big[rng.integers(0, 90, 30), rng.integers(0, 90, 30)] *= 8  # a few bright pixels to clip
        u = (rng.uniform(0.3, 2) * np.exp(1j * rng.uniform(-3, 3)) + rng.uniform(0.05, 1) * big).astype(np.complex64)
        v = u[5:-7, 9:-3]
        s = v - v.mean()
        assert get_metric("realness_clip").fn(v) == pytest.approx(_one_phase(_clip_rms(s, CLIP_RMS)), abs=1e-5)
        m = v.mean()
        q = v * np.complex64(np.conj(m) / abs(m))
        L = np.log(np.maximum(np.abs(q), np.float32(1e-3 * abs(m))) / np.float32(abs(m))) + 1j * np.angle(q)
        want = _one_phase(_clip_rms(L - L.mean(), CLIP_RMS))
        assert get_metric("logrealness_clip").fn(v) == pytest.approx(want, abs=1e-5)


def _discs(n: int, rng: np.random.Generator, count: int, rmax: float) -> np.ndarray:
    """A thickness map of `count` sharp-edged discs on an n × n grid (its spectrum fills the objective's band)."""
    yy, xx = np.mgrid[:n, :n] - n / 2
    h = np.zeros((n, n))
    for cy, cx, r in rng.uniform([-n / 2.5, -n / 2.5, 1.5], [n / 2.5, n / 2.5, rmax], (count, 3)):
        h = np.maximum(h, ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(float))
    return h


def _defocused(t: np.ndarray, z: float, wl: float = 666e-9, px: float = 1e-6, na: float = 0.25) -> np.ndarray:
    """The pupil-filtered field of transmittance t for a specimen at defocus z (as the simulator makes it)."""
    from plugins.holography.propagate import transfer_function

    f = np.fft.fftfreq(t.shape[0], px)
    pupil = f[:, None] ** 2 + f[None, :] ** 2 <= (na / wl) ** 2
    tf = np.asarray(transfer_function(t.shape, wl, px, z, 1.0, True))
    return np.fft.ifft2(np.fft.fft2(t) * pupil * tf).astype(np.complex64)


def test_spectral_realness_equals_the_realness_of_refocused_planes():
    """One spectrum gives the realness of every refocused plane (Σ s² by Parseval, refocus = spectral phase), and
    its peak is the simulated z."""
    from plugins.holography.autofocus import m_realness, refocus_resampled
    from plugins.holography.focus import spectral_realness

    o = Optics(mode="offaxis", wavelength_m=666e-9, pixel_size_m=1e-6, na=0.25)
    t = np.exp((-0.01 + 0.3j) * _discs(128, np.random.default_rng(3), 12, 6))
    u = _defocused(t, 17e-6)
    sr = spectral_realness(u.shape, o.wavelength_m, 1e-6, 1.0, -46e-6, 46e-6, 369)
    v = sr(np.fft.fft2(u))
    for i in (0, 120, 252, 300):
        assert v[i] == pytest.approx(m_realness(refocus_resampled(u, o, 1e-6, sr.zs[i])), rel=1e-2, abs=1e-3)
    assert abs(sr.zs[int(np.argmax(v))] - 17e-6) <= 0.5e-6
    assert v.max() > 0.99 and np.median(v) < 0.9


def test_spectral_autocorrelation_reads_the_defocus_of_any_thin_object():
    """The model input "qmap": S(k)·S(−k) of a windowed crop carries the chirp exp(2i z kz) whatever the thin
    object (phase, amplitude or mixed): undoing the chirp of the true z makes it most one-phase."""
    from plugins.holography.autofocus import spectral_autocorrelation

    wl, px = 666e-9, 1e-6
    rng = np.random.default_rng(8)
    f = np.fft.fftshift(np.fft.fftfreq(64, px))
    kap = 2 * np.pi * (np.sqrt(np.clip(1 / wl ** 2 - f[:, None] ** 2 - f[None, :] ** 2, 0, None)) - 1 / wl)
    zs = np.arange(-40e-6, 40.1e-6, 0.5e-6)
    for c, z_true in ((0.3j, 23e-6), (-0.3 + 0j, -31e-6), (-0.1 + 0.3j, 6e-6)):
        u = _defocused(np.exp(c * _discs(64, rng, 8, 5)), z_true)
        q = spectral_autocorrelation((u / u.mean())[None])[0]
        score = [abs(np.sum(q * np.exp(-2j * z * kap))) for z in zs]
        assert abs(zs[int(np.argmax(score))] - z_true) <= 1.5e-6, (c, z_true)


def test_qmap_input_turns_the_defocus_into_straight_fringes_along_k2():
    """On the polar |k|² grid of the qmap input every row carries the same chirp exp(−2i z κ): summing the rows and
    matching the chirp gives back z (sign included) for phase and amplitude objects."""
    from plugins.holography.autofocus import DEFAULT_PREPROCESS, QMAP_RHO_MAX, crops_to_input

    pp = dict(DEFAULT_PREPROCESS, input="qmap", channels=["re", "im", "logabs"], gain=1.0)
    wl = 0.666  # µm
    f2 = QMAP_RHO_MAX ** 2 * np.arange(64) / 63
    kap = 2 * np.pi * (np.sqrt(1 / wl ** 2 - f2) - 1 / wl)
    zs = np.arange(-45, 45.1, 0.5)
    rng = np.random.default_rng(2)
    for c, z in ((0.4j, -27.0), (-0.3 + 0j, 14.0), (0.5j, 38.0)):
        u = _defocused(np.exp(c * _discs(128, rng, 30, 5)), z * 1e-6)
        x = crops_to_input(u, np.array([[32, 32]]), pp)
        assert x.shape == (1, 3, 64, 64) and np.isfinite(x).all()
        q = (x[0, 0] + 1j * x[0, 1]).sum(axis=0)
        score = np.abs(np.exp(-2j * np.outer(zs, kap)) @ q)
        assert abs(zs[int(np.argmax(score))] - z) <= 2.0, (c, z)
