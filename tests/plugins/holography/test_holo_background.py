"""Off-axis frames without a recorded background: the background field fitted to the frame itself flattens the
reference beam's curvature and the illumination envelope while keeping the specimen, and the engine and the CLI
use it and say so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main
from app.core import manifest
from app.core.errors import BadInput
from plugins.holography.background import frame_background
from plugins.holography.hdf5 import write_stack
from plugins.holography.reconstruct import Reconstructor


def _field(n: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u = background × object, background, object mask): a smooth tilted, curved, non-uniform background and a
    few small phase/amplitude discs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[-1:1:n * 1j, -1:1:n * 1j]
    bg = (1 + 0.3 * x - 0.2 * y - 0.3 * (x * x + y * y)) * np.exp(1j * (2.5 * (x * x + y * y) + 1.5 * x))
    obj = np.ones((n, n), np.complex64)
    mask = np.zeros((n, n), bool)
    for _ in range(6):
        cy, cx = rng.uniform(-0.8, 0.8, 2)
        d = (y - cy) ** 2 + (x - cx) ** 2 < 0.07 ** 2
        obj[d] *= rng.uniform(0.6, 1.0) * np.exp(1j * rng.uniform(0.5, 1.5))
        mask |= d
    return (bg * obj).astype(np.complex64), bg, mask


def test_frame_background_divides_out_a_smooth_background_and_keeps_the_specimen():
    u, bg, mask = _field()
    est = frame_background(u)
    v = u / est
    ring = ~mask
    err_fit = np.abs(v[ring] - 1)
    err_mean = np.abs(u[ring] / u.mean() - 1)
    assert np.median(err_fit) < 0.05 and np.median(err_mean) > 0.5  # the mean alone leaves the curvature in
    truth = u / bg  # the specimen alone
    assert np.median(np.abs(v[mask] - truth[mask])) < 0.15


def test_reconstructor_self_background_flattens_the_field(offaxis_frame):
    holo, background, optics, _ = offaxis_frame("dots", 10e-6, size=256, seed=3)
    rec_bg = Reconstructor(optics, background)
    ref = rec_bg.reconstruct(holo, 10e-6, keep_field=True).field
    plain = Reconstructor(optics).reconstruct(holo, 10e-6, keep_field=True).field
    own = Reconstructor(optics, self_background="frame")
    est = own.reconstruct(holo, 10e-6, keep_field=True).field
    assert own.background_source == "frame" and rec_bg.background_source == "recorded"
    m = 16  # away from the edges

    def dev(u: np.ndarray) -> float:  # how far the field is from the recorded-background reconstruction
        a, b = u[m:-m, m:-m], ref[m:-m, m:-m]
        a = a * np.vdot(a, b) / np.vdot(a, a)  # best global complex scale
        return float(np.median(np.abs(a - b)))

    assert dev(est) < 0.85 * dev(plain), (dev(est), dev(plain))
    with pytest.raises(BadInput):
        Reconstructor(optics, self_background="median")


def test_cli_without_background_uses_and_reports_the_frame_estimate(offaxis_frame, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(manifest, "model_roots", lambda: [empty])
    frames, zs = [], [-20e-6, 5e-6, 25e-6]
    for i, z in enumerate(zs):
        holo, _, optics, _ = offaxis_frame("usaf", z, size=192, seed=10 + i)
        frames.append(holo)
    path = write_stack(tmp_path / "nobg.h5", np.stack(frames), optics.with_(sideband="+1"), np.array(zs))
    assert main(["holo", "autofocus", str(path), "--method", "sweep", "--json"]) == 0
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert doc["background"] == "frame"
    assert any(w.startswith("No background hologram") for w in doc["warnings"])
    assert cap.err.count("No background hologram") == 1
    err = np.abs(np.array([f["z_m"] for f in doc["frames"]]) - np.array(zs))
    assert np.median(err) < 3e-6, err


class _Frames:
    """A source of off-axis frames with optics and no background hologram (frames dropped in one at a time)."""

    name = "frames"
    background = None

    def __init__(self, optics) -> None:
        self.optics = optics

    def read(self):
        return None

    def close(self) -> None:
        pass


def test_engine_without_background_estimates_it_and_reports_focus_fields(offaxis_frame, tmp_path):
    from app.core.frames import Frame
    from app.core.host import HeadlessHost
    from app.core.zoo import Zoo
    from plugins.holography.engine import NO_BACKGROUND_NOTE, HoloEngine

    host = HeadlessHost(Zoo(roots=[tmp_path / "no-models"]), home=tmp_path)
    try:
        holo, _, optics, _ = offaxis_frame("usaf", 15e-6, size=192, seed=4)
        engine = HoloEngine(host, method="sweep")
        plan = engine.attach(_Frames(optics.with_(sideband="+1")))
        assert NO_BACKGROUND_NOTE in plan.notes
        r = engine.process(Frame(0, holo, meta={"z_true_m": 15e-6}))
        assert r.background == "frame" and NO_BACKGROUND_NOTE in r.notes
        assert abs(r.z_pred_m - 15e-6) < 3e-6
        assert r.focus_in_range is True and 0 < r.focus_confidence <= 1 and r.focus_note
        engine.set_manual_z(5e-6)
        m = engine.process(Frame(1, holo))
        assert m.focus_confidence is None and m.focus_in_range is None and m.focus_note == ""
        engine.close()
    finally:
        host.shutdown()
