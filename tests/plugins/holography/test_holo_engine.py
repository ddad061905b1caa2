"""The live engine on a headless host: results arrive from the simulated camera, sweep tracks the drift, manual z and
smoothing are honoured, model choice by card optics (fallback to sweep with a notice), recording from the stream."""

from __future__ import annotations

import threading
import time

import h5py
import numpy as np
import pytest

from app.core.card import ModelCard, TensorSpec
from app.core.frames import Frame
from app.core.host import HeadlessHost
from app.core.zoo import Zoo
from plugins.holography.autofocus import TASK, preprocess_params
from plugins.holography.engine import HoloEngine, plan_focus
from plugins.holography.optics import preset
from plugins.holography.tracking import ZTracker

OPTICS = preset("dhm-offaxis-10x").optics


def card(model_id: str, **optics) -> ModelCard:
    o = {**OPTICS.to_dict(), "na_range": [0.2, 0.3], **optics}
    o = {k: v for k, v in o.items() if v is not None}
    return ModelCard(model_id, TASK, "1", "MIT", "0" * 64, 1, [TensorSpec("x", ("n", 3, 64, 64))],
                     [TensorSpec("z", ("n", 1))], extra={"holography": {"optics": o}})


class FakeModel:
    """Predicts the frame's true z (set by the test) for every crop: exercises the vit plumbing."""

    def __init__(self, c: ModelCard) -> None:
        self.card = c
        self.z = 0.0
        self.calls = 0

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        scale = float(preprocess_params(self.card)["output_scale_m"])
        return [np.full((len(x), 1), self.z / scale, np.float32)]


class FakeZooHost(HeadlessHost):
    def __init__(self, cards: list[ModelCard], **kw) -> None:
        super().__init__(**kw)
        self._cards = cards
        self.opened: dict[str, FakeModel] = {}

    def models(self, task: str | None = None) -> list[ModelCard]:
        return [c for c in self._cards if task is None or c.task == task]

    def open_model(self, model_id: str) -> FakeModel:
        c = next(c for c in self._cards if c.id == model_id)
        return self.opened.setdefault(model_id, FakeModel(c))


@pytest.fixture
def host(tmp_path):
    h = HeadlessHost(Zoo(roots=[tmp_path / "no-models"]), home=tmp_path)
    yield h
    h.shutdown()


def test_stream_results_arrive_and_sweep_tracks_the_drift(host):
    auto = HoloEngine(host)  # the default, Auto, takes the sweep without a model and says why (no warning)
    assert auto.method == "auto" and auto.plan.method == "sweep" and "no installed autofocus model" in auto.plan.reason
    assert not host.notices
    engine = HoloEngine(host, method="vit+refine")
    assert engine.plan.method == "sweep" and engine.plan.model is None  # no model installed → sweep, and says so
    assert any("No installed autofocus model" in n.text and n.level == "warning" for n in host.notices)
    source = engine.demo_source(fps=15, speed_m_s=10e-6, size=256, seed=2)
    engine.attach(source)
    results = []
    got = threading.Event()

    def on_result(r):
        results.append(r)
        if len(results) >= 8:
            got.set()

    stream = host.start_stream(source, engine.process, on_result)
    assert got.wait(20), f"only {len(results)} results, error: {stream.stats.error}"
    stream.stop()
    r = results[-1]
    assert r.method == "sweep" and r.model is None and r.notes and "sweep" in r.notes[0]
    assert r.amplitude.ndim == 2 and r.amplitude.shape == r.phase.shape and r.amplitude.dtype == np.float32
    assert np.all(np.abs(r.phase) <= np.pi + 1e-6) and not r.unwrapped
    assert {"focus", "reconstruct", "total"} <= set(r.timings_ms)
    errors = [abs(x.z_pred_m - x.z_true_m) for x in results]
    assert np.median(errors) < 3e-6, np.array(errors) * 1e6
    zt = [x.z_true_m for x in results]
    assert len(set(zt)) == len(zt)  # the simulated specimen drifts
    engine.close()


def test_manual_z_unwrap_and_smoothing(host):
    engine = HoloEngine(host, method="sweep")
    cam = engine.demo_source(size=192, seed=1, paced=False)
    engine.attach(cam)
    engine.set_manual_z(12e-6)
    engine.unwrap = True
    r = engine.process(cam.read())
    assert r.method == "manual" and r.z_m == 12e-6 and r.z_pred_m is None and "focus" not in r.timings_ms
    assert r.unwrapped and "unwrap" in r.timings_ms
    engine.set_manual_z(None)
    engine.unwrap = False
    r = engine.process(cam.read())
    assert r.method == "sweep" and r.z_pred_m is not None
    engine.set_smoothing(False)
    r = engine.process(cam.read())
    assert r.z_m == r.z_pred_m


def test_tracker_follows_drift_and_rejects_outliers():
    t = ZTracker(gate_m=5e-6)
    rng = np.random.default_rng(0)
    out = []
    for i in range(60):
        z = 1e-6 * i * 0.5 + rng.normal(0, 0.5e-6)
        if i == 30:
            z += 20e-6  # one wild prediction
        out.append(t.update(z, i))
    truth = 0.5e-6 * np.arange(60)
    assert abs(out[30] - truth[30]) < 1.5e-6  # ignored
    assert np.mean(np.abs(np.array(out[10:]) - truth[10:])) < 0.5e-6  # no lag on a steady drift
    for i in range(60, 64):  # a real jump: re-locks after 3 frames
        last = t.update(50e-6, i)
    assert last == 50e-6


def test_model_choice_by_card_optics():
    match, other = card("holo-a"), card("holo-b", wavelength_m=532e-9)
    p = plan_focus([other, match], OPTICS.with_(na=0.22), "vit+refine")
    assert p.method == "vit+refine" and p.model == "holo-a" and not p.notes
    p = plan_focus([other], OPTICS, "vit")
    assert p.method == "sweep" and p.model is None and "wavelength" in p.notes[0]
    p = plan_focus([other, match], OPTICS, "vit", wanted="holo-b")  # the user's choice wins, with a warning
    assert p.model == "holo-b" and p.method == "vit" and "differ" in p.notes[0] and "wavelength" in p.notes[0]
    assert plan_focus([match], OPTICS, "sweep").model is None


def test_engine_uses_a_matching_model_and_replans_when_models_change(tmp_path):
    host = FakeZooHost([], home=tmp_path)
    callbacks = []
    host.on_models_changed = callbacks.append  # type: ignore[method-assign]
    engine = HoloEngine(host, method="vit")
    cam = engine.demo_source(size=192, seed=4, paced=False)
    engine.attach(cam)
    f = cam.read()
    assert engine.process(f).method == "sweep"
    host._cards.append(card("holo-a"))
    callbacks[0]()  # the zoo says a model was installed
    assert engine.plan.model == "holo-a"
    f = cam.read()
    host.open_model("holo-a").z = f.meta["z_true_m"]
    r = engine.process(f)
    assert r.method == "vit" and r.model == "holo-a" and host.opened["holo-a"].calls == 1
    assert abs(r.z_pred_m - f.meta["z_true_m"]) < 1e-9 * 1e3
    engine.set_method("vit+refine")
    r = engine.process(cam.read())
    assert r.method == "vit+refine"


def test_recording_from_the_engine(host, tmp_path):
    engine = HoloEngine(host, method="sweep")
    cam = engine.demo_source(size=128, seed=5, paced=False)
    engine.attach(cam)
    engine.set_manual_z(5e-6)
    rec = engine.start_recording(tmp_path / "r.h5")
    frames = [cam.read() for _ in range(4)]
    for f in frames:
        engine.process(f)
    assert engine.stop_recording() is rec and rec.written == 4
    with h5py.File(tmp_path / "r.h5", "r") as h:
        np.testing.assert_array_equal(h["holograms"][3], frames[3].data)
        np.testing.assert_allclose(h["z_m"][:], [f.meta["z_true_m"] for f in frames])
        assert list(h["method"][:]) == [b"manual"] * 4 and h.attrs["mode"] == "offaxis"
        assert h["background"].shape == (128, 128)


def test_frames_with_other_optics_rebuild_the_reconstructor(host):
    engine = HoloEngine(host, method="sweep")
    cam = engine.demo_source(size=128, seed=6, paced=False)
    engine.attach(cam)
    f = cam.read()
    engine.set_manual_z(0.0)
    r1 = engine.process(f)
    other = Frame(1, f.data, time.monotonic(), {"optics": f.meta["optics"].with_(wavelength_m=600e-9)})
    engine.process(other)
    assert engine.stream_optics.wavelength_m == 600e-9 and r1.pixel_size_m > 0
