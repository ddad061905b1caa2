"""Angular-spectrum propagation: reversibility, composition, band limit, evanescent cut, FFT backends."""

from __future__ import annotations

import os

import numpy as np
import pytest

from plugins.holography import fftback
from plugins.holography.propagate import Propagator, band_limits, propagate, transfer_function

LAM, PX = 666e-9, 0.5e-6


def _field(n: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))).astype(np.complex64)


@pytest.mark.parametrize("z", [5e-6, 46e-6, -30e-6])
def test_z_then_minus_z_returns_the_field(z):
    u = _field()
    back = propagate(propagate(u, z, LAM, PX), -z, LAM, PX)
    assert np.linalg.norm(back - u) / np.linalg.norm(u) <= 1e-4


def test_real_input_fast_path_matches_complex():
    x = np.random.default_rng(1).random((128, 130)).astype(np.float32) * 1000
    a = propagate(x, 20e-6, LAM, PX)
    b = propagate(x.astype(np.complex64), 20e-6, LAM, PX)
    assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()


def test_propagation_composes_and_has_no_piston():
    u = _field(128)
    a = propagate(propagate(u, 10e-6, LAM, PX), 15e-6, LAM, PX)
    b = propagate(u, 25e-6, LAM, PX)
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-4
    flat = np.ones((64, 64), np.complex64)
    assert np.allclose(propagate(flat, 30e-6, LAM, PX), flat, atol=1e-5)  # piston dropped: a plane wave stays put


def test_band_limit_matches_matsushima_and_only_bites_at_large_z():
    ly, lx = band_limits((512, 512), LAM, PX, 50e-6)
    assert 0.9 / LAM < lx < 0.95 / LAM  # DHM: ≈0.93/λ, above Nyquist 1/(2Δx)
    h = transfer_function((512, 512), LAM, PX, 46e-6)
    assert np.count_nonzero(h) == h.size  # no cut at all in the DHM case
    ly, lx = band_limits((512, 512), 630e-9, 1e-6, 13e-3)
    assert 0.028e6 < lx < 0.033e6  # lensless 13 mm: ≈0.03 µm⁻¹
    h = transfer_function((512, 512), 630e-9, 1e-6, 13e-3)
    f = np.abs(np.fft.fftfreq(512, 1e-6))
    keep = np.abs(h) > 0
    assert keep[0, f < 0.9 * lx].all() and not keep[0, f > 1.1 * lx].any()
    assert np.count_nonzero(transfer_function((512, 512), 630e-9, 1e-6, 13e-3, band_limit=False)) == h.size


def test_band_limit_and_padding_beat_plain_as_at_large_z():
    """A 6 µm disc propagated 5 mm on a 128-px, 1 µm grid, against the same propagation on a 1024-px grid (no
    wrap-around): band-limited + padded AS is close, plain AS aliases (cf. holopy#101)."""
    n, z = 128, 5e-3
    yy, xx = np.mgrid[:n, :n] - n / 2
    u = ((yy ** 2 + xx ** 2) < 9).astype(np.complex64)
    big = np.zeros((1024, 1024), np.complex64)
    big[448:576, 448:576] = u
    ref = propagate(big, z, 630e-9, 1e-6)[448:576, 448:576]

    def err(**kw: object) -> float:
        return float(np.linalg.norm(propagate(u, z, 630e-9, 1e-6, **kw) - ref) / np.linalg.norm(ref))

    assert err(pad=2) < 0.35
    assert err(band_limit=False) > 4 * err(pad=2)


def test_evanescent_waves_are_cut():
    h = transfer_function((64, 64), 633e-9, 0.2e-6, 1e-6, band_limit=False)  # Nyquist 2.5/µm > 1/λ
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(64, 0.2e-6), np.fft.fftfreq(64, 0.2e-6)))
    assert not np.any(h[f > 1 / 633e-9]) and np.all(h[f < 0.95 / 633e-9])


def test_propagator_caches_and_sweeps_from_one_spectrum():
    u = _field(128)
    p = Propagator((128, 128), LAM, PX)
    assert p.transfer(10e-6) is p.transfer(10e-6)
    spec = p.spectrum(u)
    assert np.allclose(p.from_spectrum(spec, 10e-6), p(u, 10e-6), atol=1e-4)
    padded = Propagator((100, 120), 630e-9, 1e-6, pad=2)
    assert padded.grid[0] >= 200 and padded(u[:100, :120], 1e-3).shape == (100, 120)


def test_pyfftw_backend_agrees_with_scipy():
    pytest.importorskip("pyfftw")
    u = _field(64)
    h = transfer_function((64, 64), LAM, PX, 20e-6)
    a = fftback.FFT2((64, 64), "pyfftw", 1)
    b = fftback.FFT2((64, 64), "scipy", 1)
    assert np.allclose(a.convolve(u, h), b.convolve(u, h), atol=1e-4)
    assert np.allclose(a.convolve(u, h, np.abs), np.abs(b.convolve(u, h)), atol=1e-4)
    assert np.allclose(a.inverse(a.forward(u)), u, atol=1e-4)


def test_background_fft_tuning_stops_when_the_process_exits():
    """Exit while a large shape is still being tuned: tuning stops at its next step and the process ends cleanly
    (a thread left inside FFTW during interpreter shutdown aborts the process)."""
    import subprocess
    import sys

    code = ("from plugins.holography import fftback\n"
            "import time\n"
            "fftback.tune_async((1536, 2048))\n"
            "time.sleep(0.2)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "VITASCOPE_FFT": "auto"})
    assert r.returncode == 0 and "terminate" not in r.stderr, r.stderr[-500:]


def test_tuning_asked_to_stop_raises_at_its_next_step():
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(fftback.TuningStopped):
        fftback.tune((256, 256), reps=1, stop=stop)
