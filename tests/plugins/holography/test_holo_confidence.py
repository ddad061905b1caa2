"""Focus confidence and "no focus in range": sharpness curves of known shape, simulated frames whose focus lies
outside the searched range, the real in-line lensless hologram searched over a microscope's ±46 µm and over its
own range, and the fields the engine and `holo autofocus` report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from app.core import manifest
from plugins.holography.autofocus import Autofocus
from plugins.holography.confidence import LOW_CONFIDENCE, focus_confidence
from plugins.holography.hdf5 import write_stack
from plugins.holography.optics import Optics, preset
from plugins.holography.physics import simulate_stack
from plugins.holography.readers import read_input
from plugins.holography.reconstruct import Reconstructor

ZS = np.linspace(-46e-6, 46e-6, 29)


def test_a_narrow_interior_peak_is_a_clear_focus():
    v = 1 + np.exp(-((ZS - 12e-6) / 4e-6) ** 2)
    c = focus_confidence(ZS, v, +1, (-46e-6, 46e-6))
    assert c.in_range and not c.at_edge and c.confidence > 0.8 and c.note.startswith("clear focus")
    # the same curve for a metric that is minimal at focus
    assert focus_confidence(ZS, -v, -1, (-46e-6, 46e-6)).confidence == pytest.approx(c.confidence)


def test_a_curve_rising_to_the_edge_says_no_focus_in_range():
    c = focus_confidence(ZS, np.linspace(0.5, 0.9, len(ZS)), +1, (-46e-6, 46e-6))
    assert c.at_edge and not c.in_range and c.confidence == 0.0 and "edge of the z range" in c.note


def test_flat_and_weak_curves():
    flat = focus_confidence(ZS, np.full(len(ZS), 0.7), +1)
    assert not flat.in_range and flat.confidence == 0.0
    rng = np.random.default_rng(0)
    noisy = 1 + 0.05 * rng.standard_normal(len(ZS))
    noisy[[0, -1]] = 0.9  # an interior maximum, but no shape
    c = focus_confidence(ZS, noisy, +1)
    assert c.in_range and c.confidence < LOW_CONFIDENCE and c.note.startswith("uncertain")


def test_inline_peak_on_the_hologram_plane_is_not_a_focus():
    hump = 1 - (ZS / 100e-6) ** 2  # symmetric about z = 0, as every in-line curve is
    assert not focus_confidence(ZS, hump, +1, inline=True).in_range
    assert focus_confidence(ZS, hump, +1, inline=False).in_range  # off-axis curves have no such symmetry
    peak = 1 + np.exp(-((np.abs(ZS) - 30e-6) / 3e-6) ** 2)  # twin peaks at ±30 µm: a focus away from the camera
    assert focus_confidence(ZS, peak, +1, inline=True).in_range


def _stack(z_true: list[float], seed: int = 5):
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", len(z_true), 192, seed=seed, kinds=("usaf", "dots"),
                                     z=np.array(z_true), z_range=(-100e-6, 100e-6))
    o = Optics.from_dict({k: attrs[k] for k in ("wavelength_m", "pixel_size_m", "mode", "medium_index", "na")})
    return h, z, bg, o.with_(z_range_m=(-46e-6, 46e-6), sideband=attrs["session_sideband"])


def test_simulated_focus_outside_the_range_is_flagged_and_inside_is_not():
    h, z, bg, o = _stack([80e-6, -85e-6, 70e-6, -60e-6, 20e-6, -10e-6])
    af = Autofocus(Reconstructor(o, bg), None, "sweep")
    got = [af.predict(f).confidence for f in h]
    notes = [c.note for c in got]
    # outside ±46 µm: "no focus in range", or (a periodic target's self-images inside the range) "uncertain"
    assert all(not c.in_range or c.confidence < LOW_CONFIDENCE for c in got[:4]), notes
    assert sum(not c.in_range for c in got[:4]) >= 2, notes
    assert all(c.in_range for c in got[4:]) and got[4].confidence > LOW_CONFIDENCE, notes


def test_real_inline_hologram_out_of_and_in_range(holo_data):
    micro = preset("dhm-offaxis-10x").optics.with_(mode="inline", wavelength_m=630e-9, pixel_size_m=1e-6)
    st = read_input(holo_data / "inline_lensless_example.tif", micro)
    r = Autofocus(Reconstructor(st.optics), None, "sweep").predict(st.holograms[0])
    assert abs(r.z_m) < 2e-6  # what the user saw: "z −0.00 µm"
    assert not r.confidence.in_range and "no focus in range" in r.confidence.note
    st = read_input(holo_data / "inline_lensless_example.tif", preset("inline-lensless").optics)
    r = Autofocus(Reconstructor(st.optics), None, "sweep").predict(st.holograms[0])
    assert 12e-3 < r.z_m < 14e-3 and r.confidence.in_range and r.confidence.confidence > 0.5


def test_cli_reports_confidence_and_warns_once(tmp_path, monkeypatch, capsys):
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(manifest, "model_roots", lambda: [empty])
    h, z, bg, o = _stack([80e-6, 15e-6], seed=6)
    path = write_stack(tmp_path / "out_of_range.h5", h, o, z, bg)
    assert main(["holo", "autofocus", str(path), "--method", "sweep", "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert [f["focus_in_range"] for f in doc["frames"]] == [False, True]
    assert doc["frames"][0]["focus_confidence"] == 0 and doc["frames"][1]["focus_confidence"] > LOW_CONFIDENCE
    assert doc["background"] == "recorded"
    assert any(w.startswith("1 of 2 frame(s) (0): no focus in range") for w in doc["warnings"])
    assert cap.err.count("no focus in range") == 1
    assert main(["holo", "autofocus", str(path), "--method", "sweep"]) == 0
    out = capsys.readouterr().out
    assert "\tNO\t" in out and "# warning: 1 of 2 frame(s) (0): no focus in range" in out
