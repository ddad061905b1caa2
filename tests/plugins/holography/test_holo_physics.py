"""The hologram simulator: determinism, object kinds, camera model, off-axis carrier placement."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.holography.objects import ALL_KINDS, HELDOUT_KINDS, TRAIN_KINDS, transmittance
from plugins.holography.physics import simulate_stack


def test_deterministic_per_seed_and_different_across_seeds():
    a = simulate_stack("dhm-offaxis-10x", 2, 96, seed=7)
    b = simulate_stack("dhm-offaxis-10x", 2, 96, seed=7)
    c = simulate_stack("dhm-offaxis-10x", 2, 96, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert a[3]["frame_kinds"] == b[3]["frame_kinds"]
    assert not np.array_equal(a[0], c[0]) and not np.allclose(a[1], c[1])
    # frame i does not depend on how many frames follow it
    d = simulate_stack("dhm-offaxis-10x", 1, 96, seed=7)
    assert np.array_equal(d[0][0], a[0][0])


def test_stack_layout_and_attrs():
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", 3, (80, 96), seed=1, kinds=("cells", "usaf"))
    assert h.shape == (3, 80, 96) and h.dtype in (np.uint8, np.uint16) and bg.shape == (80, 96)
    assert z.dtype == np.float64 and np.all((z >= -46e-6) & (z <= 46e-6))
    for k in ("wavelength_m", "pixel_size_m", "mode", "na", "session_carrier"):
        assert k in attrs
    assert attrs["mode"] == "offaxis" and 0.2 <= attrs["na"] <= 0.3
    assert set(attrs["frame_kinds"].split(",")) <= {"cells", "usaf"}
    c = np.hypot(*attrs["session_carrier"])
    assert 0.15 <= c <= 0.3 and attrs["session_carrier"][1] >= 0
    top = (1 << int(attrs["session_bits"])) - 1
    assert h.max() <= top and h.min() >= 0 and np.mean(h == top) < 0.05
    h2, z2, bg2, a2 = simulate_stack("dhm-offaxis-10x", 2, 64, seed=1, per_frame_optics=True, z=[1e-6, -2e-6])
    assert bg2 is None and a2["frame_na"].shape == (2,) and np.allclose(z2, [1e-6, -2e-6])
    h3, z3, bg3, a3 = simulate_stack("inline-lensless", 1, 64, seed=2, kinds=("beads",))
    assert a3["mode"] == "inline" and 1e-3 <= z3[0] <= 20e-3 and "session_carrier" not in a3


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_renders(kind):
    t = transmittance(kind, np.random.default_rng(3), (96, 96), 0.5e-6, 666e-9)
    assert t.dtype == np.complex64 and np.isfinite(t).all()
    assert np.abs(t).max() <= 1.0 + 1e-5
    assert np.std(np.abs(t)) + np.std(np.angle(t)) > 1e-3  # the specimen is there


def test_kind_sets_and_errors():
    assert not set(TRAIN_KINDS) & set(HELDOUT_KINDS)
    with pytest.raises(BadInput, match="unknown object kind"):
        simulate_stack("dhm-offaxis-10x", 1, 64, kinds=("unicorns",))
    with pytest.raises(BadInput, match="unknown optics preset"):
        simulate_stack("nope", 1, 64)


def test_offaxis_sideband_sits_at_the_carrier():
    h, _, bg, attrs = simulate_stack("dhm-offaxis-10x", 1, 128, seed=4, kinds=("cells",))
    spec = np.abs(np.fft.fft2(bg.astype(np.float64) - bg.mean()))
    f = np.fft.fftfreq(128)
    spec[np.hypot(*np.meshgrid(f, f, indexing="ij")) < 0.05] = 0
    iy, ix = np.unravel_index(np.argmax(spec), spec.shape)
    cy, cx = attrs["session_carrier"]
    peak = (f[iy], f[ix])
    assert min(np.hypot(peak[0] - cy, peak[1] - cx), np.hypot(peak[0] + cy, peak[1] + cx)) < 1.5 / 128


def test_held_out_settings_can_be_chosen():
    _, _, _, a = simulate_stack("dhm-offaxis-10x", 1, 64, seed=1, carrier_cpp=(0.35, 0.4),
                                carrier_angle_deg=(40, 50), na_range=(0.22, 0.22))
    cy, cx = a["session_carrier"]
    assert 0.35 <= np.hypot(cy, cx) <= 0.4 and 40 <= np.degrees(np.arctan2(cy, cx)) <= 50 and a["na"] == 0.22


def test_idealised_hologram_leaves_out_exactly_the_in_line_term():
    """inline_term=False (diagnosis) replaces the object's |O|² by the empty beam's |E|² and changes nothing else;
    a stack simulated that way says so in its attributes."""
    from plugins.holography.optics import preset
    from plugins.holography.physics import Scene, draw_session

    rng = np.random.default_rng(5)
    s = draw_session("dhm-offaxis-10x", rng)
    optics = preset("dhm-offaxis-10x").optics.with_(na=s.na)
    scene = Scene(optics, s, (96, 96), "cells", rng, None, 46e-6)
    z = 12e-6
    o, e = scene.field(z), scene._illum
    diff = scene.intensity(z) - scene.intensity(z, inline_term=False)
    np.testing.assert_allclose(diff, np.abs(o) ** 2 - np.abs(e) ** 2, atol=1e-4)
    assert np.abs(diff).max() > 0.05  # a thick cell defocused by 12 µm has a strong in-line term
    a = simulate_stack("dhm-offaxis-10x", 1, 64, seed=2, inline_term=False)[3]
    assert a["simulated_without_inline_term"] and "simulated_without_inline_term" not in \
        simulate_stack("dhm-offaxis-10x", 1, 64, seed=2)[3]
