"""Off-axis frames without a recorded background in `holo reconstruct` and in the sideband's determination
(`holo calibrate`, `--sideband auto`): they estimate the background field from each frame as autofocus does, say so
in the same warning and JSON field, and the estimate brings the reconstruction closer to the true object; checked on
the independent simulator (bench/holo_indep_sim.py), which the estimate was not tuned on."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from app.cli import main
from app.core import manifest
from app.core.errors import BadInput
from bench.holo_indep_sim import SPECIMENS, draw_microscope
from bench.holo_indep_sim import write_stack as write_indep_stack
from plugins.holography.background import NO_BACKGROUND_NOTE
from plugins.holography.calibrate import _measure_sideband
from plugins.holography.hdf5 import read_stack, write_stack
from plugins.holography.optics import Optics
from plugins.holography.physics import simulate_stack
from plugins.holography.reconstruct import Reconstructor
from plugins.holography.sideband import sign_from_stack, specimen_sideband

MODEL_DIR = Path(__file__).resolve().parents[3] / "plugins" / "holography" / "models" / "holo-autofocus-tvit"


@dataclasses.dataclass
class Shot:
    holo: np.ndarray
    background: np.ndarray
    truth: np.ndarray  # the specimen's transmittance in focus, pupil-filtered, illumination divided out
    optics: Optics  # with the microscope's true sideband stated
    scope: object
    z_m: float


def _shot(seed: int, kind: str, z_m: float, size: int = 192, tilt: str | None = None) -> Shot:
    rng = np.random.default_rng([seed, 5])
    scope = draw_microscope(rng, size)
    if tilt is not None and scope.sideband != tilt:
        scope = dataclasses.replace(scope, carrier=(-scope.carrier[0], -scope.carrier[1]))
    g = (size + 2 * scope.margin,) * 2
    t = SPECIMENS[kind](rng, g, scope.pixel_m, scope.wavelength_m)
    holo = scope.expose(scope.object_wave(t, z_m), rng)
    truth = scope.object_wave(t, 0.0) / scope.object_wave(None, 0.0)
    optics = Optics.from_dict(scope.optics_attrs()).with_(sideband=scope.sideband)
    return Shot(holo, scope.background(rng), truth, optics, scope, z_m)


def _band_crop(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`a` resampled onto a coarser grid of the same field of view by keeping its central frequencies (the
    off-axis reconstruction's grid keeps only the objective's band)."""
    h, w = a.shape
    hc, wc = shape
    s = np.fft.fftshift(np.fft.fft2(a))
    y0, x0 = h // 2 - hc // 2, w // 2 - wc // 2
    return np.fft.ifft2(np.fft.ifftshift(s[y0:y0 + hc, x0:x0 + wc])) * (hc * wc / (h * w))


def _error(u: np.ndarray, truth: np.ndarray) -> float:
    """Distance of a reconstructed field from the true object, after the best global complex scale (a field's
    overall amplitude and phase are arbitrary), relative to the specimen's contrast; edges left out."""
    t = _band_crop(truth, u.shape)
    m = max(4, u.shape[0] // 16)
    a, b = u[m:-m, m:-m], t[m:-m, m:-m]
    a = a * np.vdot(a, b) / np.vdot(a, a)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b - b.mean()))


KINDS = ("beads", "cells", "debris", "fibres", "target", "mixed")


def test_reconstruction_at_the_right_z_is_closer_to_the_object_with_the_estimated_background():
    errs = {"recorded": [], "frame": [], "none": []}
    for i, kind in enumerate(KINDS):
        s = _shot(40 + i, kind, float(np.random.default_rng(i).uniform(-40e-6, 40e-6)))
        for name, kw in (("recorded", {"background": s.background}), ("frame", {"self_background": "frame"}),
                         ("none", {})):
            rec = Reconstructor(s.optics, **kw)
            errs[name].append(_error(rec.reconstruct(s.holo, s.z_m, keep_field=True).field, s.truth))
    e = {k: np.array(v) for k, v in errs.items()}
    assert np.all(e["frame"] < 0.7 * e["none"]), errs  # every microscope and specimen kind
    assert np.median(e["frame"]) < 0.3 * np.median(e["none"]), errs
    assert np.median(e["frame"]) < 1.6 * np.median(e["recorded"]), errs  # near what a recorded background gives


def _field_from_h5(path: Path) -> tuple[np.ndarray, dict]:
    with h5py.File(path, "r") as f:
        return f["amplitude"][0] * np.exp(1j * f["phase"][0]), dict(f.attrs)


def test_cli_reconstruct_without_background_uses_and_reports_the_estimate(tmp_path, capsys):
    s = _shot(50, "cells", 22e-6)
    stack = write_indep_stack(tmp_path / "nobg.h5", s.scope, [_Frame(s.holo, s.z_m)], None)
    out = tmp_path / "rec.h5"
    argv = ["holo", "reconstruct", str(stack), "--z", "2.2e-5", "--out", str(out), "--json",
            "--sideband", s.optics.sideband]
    assert main(argv) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["background"] == "frame" and doc["warnings"] == [NO_BACKGROUND_NOTE]
    assert cap.err.count("No background hologram") == 1
    assert doc["frames"] == [{"index": 0, "z_m": pytest.approx(22e-6)}] and doc["outputs"] == [str(out)]
    u, attrs = _field_from_h5(out)
    assert attrs["background"] == "frame"
    plain = Reconstructor(s.optics).reconstruct(s.holo, s.z_m, keep_field=True).field  # what it did before
    assert _error(u, s.truth) < 0.5 * _error(plain, s.truth), (_error(u, s.truth), _error(plain, s.truth))
    # with a recorded background: that one, and no warning
    with_bg = write_indep_stack(tmp_path / "bg.h5", s.scope, [_Frame(s.holo, s.z_m)], s.background)
    assert main([*argv[:2], str(with_bg), *argv[3:5], "--out", str(tmp_path / "rec2.h5"), "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["background"] == "recorded" and "warnings" not in doc and "No background" not in cap.err


@dataclasses.dataclass
class _Frame:  # what bench/holo_indep_sim.write_stack takes
    hologram: np.ndarray
    z_m: float
    kind: str = "cells"


@pytest.mark.parametrize("tilt", ["+1", "-1"])
def test_the_sign_of_z_from_a_stack_without_background(tilt, tmp_path):
    z = np.array([-36e-6, -18e-6, 2e-6, 20e-6, 34e-6])
    stage = z + 6e-6  # the stage's zero is not the focus
    # independent simulator: 3 microscopes × 3 specimen kinds, a z-stack of each
    verdicts = []
    for seed in (60, 61, 62):
        for kind in ("cells", "beads", "target"):
            shots = [_shot(seed, kind, float(zi), tilt=tilt) for zi in z]
            unstated = shots[0].optics.with_(sideband=None)
            frames = np.stack([s.holo for s in shots])
            try:
                side = sign_from_stack(frames, stage, unstated, None).sideband
            except BadInput:
                side = None
            if side != tilt:  # a miss the estimate caused would be right with the recorded background
                assert side == sign_or_none(frames, stage, unstated, shots[0].background), (seed, kind, side)
            verdicts.append(side)
    assert verdicts.count(tilt) >= 7, verdicts
    # the training simulator's microscope, as `holo calibrate` measures it (before any fine-tuning)
    h, zz, _, attrs = simulate_stack("dhm-offaxis-10x", 5, 192, seed=31, kinds=("cells",), z=z, sideband=tilt)
    st = read_stack(write_stack(tmp_path / "nobg.h5", h, Optics.from_dict(attrs), zz, None, attrs))
    assert st.background is None and st.optics.sideband is None
    optics, note = _measure_sideband(st, tmp_path / "nobg.h5")
    assert optics.sideband == tilt and "slope" in note, note


def sign_or_none(frames: np.ndarray, stage: np.ndarray, optics: Optics, background: np.ndarray | None) -> str | None:
    try:
        return sign_from_stack(frames, stage, optics, background).sideband
    except BadInput:
        return None


@pytest.mark.parametrize("tilt", ["+1", "-1"])
def test_the_specimen_tells_the_sideband_without_background(tilt):
    h, z, _, attrs = simulate_stack("dhm-offaxis-10x", 4, 256, seed=4, kinds=("cells", "rbc"),
                                    z=np.array([-36e-6, -18e-6, 20e-6, 34e-6]), sideband=tilt)
    o = Optics.from_dict(attrs)
    got = [specimen_sideband(f, o, None).sideband for f in h]
    assert got.count(tilt) >= 3 and got.count(None) + got.count(tilt) == 4, got  # never wrong, decided mostly


@pytest.mark.skipif(not (MODEL_DIR / "checkpoint.pt").is_file(), reason="shipped autofocus model absent")
def test_cli_calibrate_without_background_reports_the_estimate_and_the_right_sign(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(manifest, "model_roots", lambda: [empty])
    zc = np.linspace(-36e-6, 36e-6, 6)
    h, z, _, attrs = simulate_stack("dhm-offaxis-10x", 6, 192, seed=21, kinds=("cells", "cluster"), z=zc,
                                    sideband="-1")
    stack = write_stack(tmp_path / "mirror.h5", h, Optics.from_dict(attrs), z, None, attrs)
    code = main(["holo", "calibrate", str(stack), "--out", str(tmp_path / "af"), "--model", str(MODEL_DIR),
                 "--steps", "2", "--json"])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    doc = json.loads(cap.out)
    assert doc["background"] == "frame" and doc["warnings"] == [NO_BACKGROUND_NOTE]
    assert doc["sideband"]["value"] == "-1" and "slope" in doc["sideband"]["source"]
    assert cap.err.count("vitascope: note: No background hologram") == 1
