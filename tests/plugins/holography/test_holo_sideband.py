"""The sign of z is a property of the microscope: the simulator draws both reference tilts, the optics say which
sideband is the object wave, a z-stack with known stage steps measures it, and a calibrated stream of either tilt
then gives z of the right sign (sweep, vit, vit+refine)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main as cli_main
from app.core.card import read_card
from app.core.errors import BadInput
from plugins.holography.focus import sweep_autofocus
from plugins.holography.hdf5 import read_stack, write_stack
from plugins.holography.optics import Optics, preset
from plugins.holography.physics import draw_session, session_sideband, simulate_stack
from plugins.holography.reconstruct import Reconstructor, detect_carrier
from plugins.holography.sideband import (
    sign_from_stack,
    specimen_sideband,
    with_model_sideband,
)

MODEL_DIR = Path(__file__).resolve().parents[3] / "plugins" / "holography" / "models" / "holo-autofocus-tvit"
Z = np.array([-36e-6, -18e-6, 20e-6, 34e-6])


def _stack(sideband: str, n: int = 4, size: int = 192, seed: int = 11, kinds=("cells",), z=Z):
    return simulate_stack("dhm-offaxis-10x", n, size, seed=seed, kinds=kinds, z=z[:n], sideband=sideband)


def test_simulator_draws_both_reference_tilts_and_records_the_truth_only_as_session_attrs():
    sides = {session_sideband(draw_session("dhm-offaxis-10x", np.random.default_rng(i), sideband="random"))
             for i in range(12)}
    assert sides == {"+1", "-1"}
    plus = draw_session("dhm-offaxis-10x", np.random.default_rng(3))
    minus = draw_session("dhm-offaxis-10x", np.random.default_rng(3), sideband="-1")
    assert minus.carrier == (-plus.carrier[0], -plus.carrier[1]) and session_sideband(minus) == "-1"
    _, _, _, attrs = _stack("-1", n=1, size=64)
    assert attrs["session_sideband"] == "-1" and "sideband" not in attrs  # a new microscope does not state it
    assert Optics.from_dict(attrs).sideband is None


def test_detect_carrier_takes_the_sideband_the_optics_name():
    h, _, bg, attrs = _stack("-1", n=1)
    o = Optics.from_dict(attrs)
    plus = detect_carrier(bg, na=o.na, wavelength_m=o.wavelength_m, pixel_m=o.pixel_size_m)
    minus = detect_carrier(bg, na=o.na, wavelength_m=o.wavelength_m, pixel_m=o.pixel_size_m, sideband="-1")
    assert plus.fx >= 0 and (minus.fy, minus.fx) == (-plus.fy, -plus.fx)
    true = np.asarray(attrs["session_carrier"])
    assert np.allclose([minus.fy, minus.fx], true, atol=2 / 192)  # the simulated object sideband
    rec = Reconstructor(o.with_(sideband="-1"), bg)
    rec.reconstruct(h[0], 0.0)
    assert np.allclose([rec.carrier.fy, rec.carrier.fx], true, atol=2 / 192)
    fixed = Reconstructor(o.with_(carrier=(plus.fy, plus.fx), sideband="-1"), bg)
    fixed.reconstruct(h[0], 0.0)
    assert fixed.carrier.fx == pytest.approx(-plus.fx)


@pytest.mark.parametrize("tilt", ["+1", "-1"])
def test_a_stack_with_known_stage_steps_gives_the_sign_and_the_calibrated_stream_the_right_z(tilt):
    h, z, bg, attrs = _stack(tilt)
    o = Optics.from_dict(attrs)
    stage = z + 7e-6  # the stage's zero is not the focus: the slope's sign does not care
    fit = sign_from_stack(h, stage, o, bg)
    assert fit.sideband == tilt and abs(fit.r) > 0.9
    rec = Reconstructor(o.with_(sideband=fit.sideband), bg)
    found = np.array([sweep_autofocus(f, rec)[0] for f in h])
    assert np.all(np.sign(found) == np.sign(z)), (found, z)
    assert np.median(np.abs(found - z)) < 5e-6
    unstated = Reconstructor(o, bg)  # what the code did before for every microscope
    z0 = sweep_autofocus(h[0], unstated)[0]
    assert np.sign(z0) == (np.sign(z[0]) if tilt == "+1" else -np.sign(z[0]))


def test_a_stack_that_cannot_tell_says_so():
    h, z, bg, attrs = _stack("+1", n=3)
    o = Optics.from_dict(attrs)
    with pytest.raises(BadInput, match="at least 3 frames"):
        sign_from_stack(h, np.array([1e-6, 1e-6, 2e-6]), o, bg)
    with pytest.raises(BadInput, match="off-axis"):
        sign_from_stack(h, z[:3], o.with_(mode="inline"), bg)


@pytest.mark.parametrize("tilt", ["+1", "-1"])
def test_the_specimen_tells_the_sideband_for_phase_objects_and_not_for_amplitude_ones(tilt):
    h, z, bg, attrs = _stack(tilt, n=4, size=256, seed=4, kinds=("cells", "rbc"))
    o = Optics.from_dict(attrs)
    got = [specimen_sideband(f, o, bg).sideband for f in h]
    assert got.count(tilt) >= 3 and got.count(None) + got.count(tilt) == 4, got  # never wrong, decided mostly
    assert specimen_sideband(h[0], o.with_(mode="inline"), bg).sideband is None
    frame, bg2, o2 = _amplitude_specimen(tilt)
    g = specimen_sideband(frame, o2, bg2)
    assert g.sideband is None and "amplitude" in g.reason, g


def _amplitude_specimen(tilt: str, size: int = 256):
    """A chrome-on-glass-like specimen (absorbing discs, no phase) at 15 µm defocus: (frame, background, optics)."""
    from plugins.holography.physics import Scene, camera

    rng = np.random.default_rng(1)
    s = draw_session("dhm-offaxis-10x", rng, sideband=tilt)
    o = preset("dhm-offaxis-10x").optics.with_(na=s.na)
    scene = Scene(o, s, (size, size), None, rng)
    gy, gx = scene.grid
    yy, xx = np.mgrid[:gy, :gx]
    t = np.ones((gy, gx), np.float32)
    for cy, cx in rng.uniform(0.3, 0.7, (6, 2)) * (gy, gx):
        t[np.hypot(yy - cy, xx - cx) < 8] = 0.3
    spec = np.fft.fft2(t)
    f2 = np.fft.fftfreq(gy, o.pixel_size_m)[:, None] ** 2 + np.fft.fftfreq(gx, o.pixel_size_m)[None, :] ** 2
    spec[f2 > (s.na / o.wavelength_m) ** 2] = 0
    scene._spec = spec.astype(np.complex64)  # the Scene's own specimen spectrum, pupil-filtered as it does
    empty = Scene(o, s, (size, size), None, rng)
    lvl = empty.background_level()
    return camera(scene.intensity(15e-6), s, lvl, rng), camera(empty.intensity(0.0), s, lvl, rng), o


def test_stated_sideband_wins_then_the_calibrated_models_then_the_default():
    o = preset("dhm-offaxis-10x").optics

    class Card:
        id = "my-scope"

        def section(self, name: str) -> dict:
            return {"optics": {"sideband": "-1"}} if name == "holography" else {}

    assert with_model_sideband(o.with_(sideband="+1"), Card())[0].sideband == "+1"
    got, why = with_model_sideband(o, Card())
    assert got.sideband == "-1" and "my-scope" in why
    got, why = with_model_sideband(o.with_(sideband="auto"), Card())
    assert got.sideband == "-1"
    got, why = with_model_sideband(o, None)
    assert got.sideband is None and "default" in why
    assert o.flipped().sideband == "-1" and o.flipped().flipped().sideband == "+1"


def _run(capsys, *argv):
    code = cli_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_sideband_flag_and_auto(tmp_path, capsys):
    h, z, bg, attrs = _stack("-1", n=2, size=256, seed=4)
    p = write_stack(tmp_path / "m.h5", h, Optics.from_dict(attrs), z, bg, attrs)
    runs = {}
    for flag in (None, "-1", "auto"):
        extra = ["--sideband", flag] if flag else []
        code, out, err = _run(capsys, "holo", "autofocus", str(p), "--method", "sweep", "--json", *extra)
        assert code == 0, err
        runs[flag] = json.loads(out)
    zs = {k: np.array([r["z_m"] for r in v["frames"]]) for k, v in runs.items()}
    assert np.all(np.sign(zs[None]) == -np.sign(z))  # unstated: mirrored, as before
    assert np.all(np.sign(zs["-1"]) == np.sign(z)) and runs["-1"]["sideband"]["value"] == "-1"
    assert runs["auto"]["sideband"]["value"] == "-1" and "specimen" in runs["auto"]["sideband"]["source"]
    assert np.all(np.sign(zs["auto"]) == np.sign(z))


@pytest.mark.skipif(not (MODEL_DIR / "checkpoint.pt").is_file(), reason="shipped autofocus model absent")
def test_calibrating_a_mirrored_microscope_fixes_the_sign_not_a_bias(tmp_path, capsys):
    pytest.importorskip("torch")
    from plugins.holography.calibrate import calibrate

    zc = np.linspace(-36e-6, 36e-6, 6)
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", 6, 192, seed=21, kinds=("cells", "cluster"), z=zc,
                                     sideband="-1")
    stack = write_stack(tmp_path / "mirror.h5", h, Optics.from_dict(attrs), z, bg, attrs)
    card = calibrate(stack, tmp_path / "mirror-af", MODEL_DIR, steps=2, seed=0)
    disk = read_card(tmp_path / "mirror-af")
    assert disk.optics["sideband"] == "-1" and "slope" in disk.provenance["sideband"]
    assert abs(disk.extra["refine"]["bias_m"]) < 5e-6  # no −40 µm "bias" fitted to a sign flip
    assert card.id == "mirror-af"
    # a new stream of the same microscope (not stating its sideband) with the calibrated model
    h2, z2, bg2, attrs2 = simulate_stack("dhm-offaxis-10x", 2, 192, seed=21, kinds=("cells",),
                                         z=np.array([-25e-6, 28e-6]), sideband="-1")
    s2 = write_stack(tmp_path / "new.h5", h2, Optics.from_dict(attrs2), z2, bg2, attrs2)
    assert read_stack(s2).optics.sideband is None
    for method in ("sweep", "vit+refine"):
        code, out, err = _run(capsys, "holo", "autofocus", str(s2), "--model", str(tmp_path / "mirror-af"),
                              "--method", method, "--json")
        assert code == 0, err
        doc = json.loads(out)
        assert doc["sideband"]["value"] == "-1" and "calibrated" in doc["sideband"]["source"]
        got = np.array([r["z_m"] for r in doc["frames"]])
        assert np.all(np.sign(got) == np.sign(z2)), (method, got, z2)


def test_no_background_is_said_in_cli_json_and_on_stderr(tmp_path, capsys):
    h, z, _, attrs = _stack("+1", n=1, size=128)
    p = write_stack(tmp_path / "nobg.h5", h, Optics.from_dict(attrs), z, None, attrs)
    code, out, err = _run(capsys, "holo", "autofocus", str(p), "--method", "sweep", "--json")
    assert code == 0 and "No background hologram" in err
    assert any("No background hologram" in w for w in json.loads(out)["warnings"])
