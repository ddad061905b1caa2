"""The holography widget (pytest-qt, offscreen) on the Qt host: the live view of the simulated camera updates the
images and the z plot, method switch and manual z, recording start/stop, absent camera, shutdown joins threads."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

pytest.importorskip("PySide6")


@pytest.fixture
def widget(isolated_settings, tmp_path, qtbot):
    import pyqtgraph as pg

    from app.core.zoo import Zoo
    from app.gui.dispatch import Dispatcher
    from app.gui.host import QtHost
    from app.gui.jobs_qt import JobsModel
    from plugins.holography import plugin

    pg.setConfigOptions(imageAxisOrder="row-major")
    host = QtHost("holography", Zoo(roots=[tmp_path / "no-models"]), JobsModel(Dispatcher()), home=tmp_path)
    engine = plugin.create_engine(host)
    w = plugin.create_widget(host, engine)
    qtbot.addWidget(w)
    w.sim_size = 192
    w.resize(1100, 700)
    w.show()
    yield w
    w.shutdown()
    host.shutdown()
    engine.close()


def test_live_view_updates_images_and_z_plot(widget, qtbot):
    w = widget
    w.start_demo()
    qtbot.waitUntil(lambda: w.results >= 4, timeout=15000)
    r = w.last
    assert w.amp_item.image.shape == r.amplitude.shape and w.phase_item.image.shape == r.phase.shape
    assert w.amp_item.levels is not None and w.phase_item.levels[0] == pytest.approx(-np.pi)
    x, y = w.focus_curve.getData()
    assert len(x) >= 2 and np.all(np.diff(x) > 0)
    assert len(w.true_curve.getData()[0]) >= 2 and len(w.pred_curve.getData()[0]) >= 2
    w.tick()
    assert "fps" in w.stats_label.text() and "focus" in w.stats_label.text() and "running" in w.stats_label.text()
    assert w.engine.method == "auto" and "Auto → <b>sweep</b>: no installed autofocus model" in w.plan_label.text()
    assert not w.banner.isVisible()  # Auto without a model is the sweep, nothing to warn about
    w.method_combo.setCurrentIndex(w.method_combo.findData("vit+refine"))
    assert w.banner.isVisible() and "No installed autofocus model" in w.banner.text()  # no model → says sweep
    assert "true" in w.z_label.text() and not w.start_button.isEnabled()


def test_method_switch_and_manual_z(widget, qtbot):
    w = widget
    w.start_demo()
    qtbot.waitUntil(lambda: w.results >= 1, timeout=15000)
    w.method_combo.setCurrentIndex(w.method_combo.findData("sweep"))
    assert w.engine.method == "sweep" and w.engine.plan.method == "sweep" and "Sweep" in w.plan_label.text()
    w.tick()
    assert not w.banner.isVisible()  # sweep needs no model: nothing to warn about
    w.set_manual_z_um(10.0)
    qtbot.waitUntil(lambda: w.last.method == "manual", timeout=10000)
    assert w.last.z_m == pytest.approx(10e-6) and "10.0 µm" in w.manual_value.text()
    w.set_manual_z_um(None)
    qtbot.waitUntil(lambda: w.last.method == "sweep", timeout=10000)
    w.unwrap_check.setChecked(True)
    qtbot.waitUntil(lambda: w.last.unwrapped, timeout=10000)
    assert "unwrapped" in w.phase_title.text


def test_record_start_stop_writes_a_file(widget, qtbot, tmp_path):
    w = widget
    path = tmp_path / "rec.h5"
    assert w.start_recording(path)  # starts the stream too
    qtbot.waitUntil(lambda: w.engine.recorder is not None and w.engine.recorder.written >= 3, timeout=15000)
    w.tick()
    assert "REC" in w.rec_indicator.text() and w.record_button.isChecked()
    w.stop_recording()
    assert not w.record_button.isChecked() and w.rec_indicator.text() == "" and "saved" in w.record_label.text()
    with h5py.File(path, "r") as f:
        n = len(f["holograms"])
        assert n >= 3 and f["holograms"].shape[1:] == (192, 192) and len(f["z_pred_m"]) == n
        assert f.attrs["mode"] == "offaxis"
    assert not w.start_recording(tmp_path)  # a folder: a clear message, no crash
    assert "is a folder" in w.banner.text()


def test_absent_camera_is_a_clear_message(widget):
    w = widget
    w.source_combo.setCurrentIndex(2)
    w.camera_spin.setValue(15)
    w.start()
    assert not w.running and w.banner.isVisible() and "camera 15" in w.banner.text()


def test_shutdown_joins_threads(widget, qtbot):
    w = widget
    w.start_demo()
    qtbot.waitUntil(lambda: w.results >= 1, timeout=15000)
    handle = w.stream
    w.shutdown()
    assert w.stream is None and not handle._worker.is_alive() and not handle._reader.is_alive()


def test_hdf5_file_source(widget, qtbot, tmp_path):
    from plugins.holography.hdf5 import write_stack
    from plugins.holography.optics import preset
    from plugins.holography.physics import simulate_stack

    holos, z, bg, attrs = simulate_stack("dhm-offaxis-10x", 3, 128, seed=1)
    path = write_stack(tmp_path / "s.h5", holos, preset("dhm-offaxis-10x").optics.with_(na=attrs["na"]), z, bg,
                       attrs)
    w = widget
    w.method_combo.setCurrentIndex(w.method_combo.findData("sweep"))
    w.open_file(path)
    qtbot.waitUntil(lambda: w.results >= 2, timeout=15000)
    assert w.last.z_true_m in set(z.tolist()) and "hdf5:s.h5" in w.source_label.text()


def test_flip_z_uses_the_other_sideband_and_says_so(widget, qtbot):
    w = widget
    w.method_combo.setCurrentIndex(w.method_combo.findData("sweep"))
    w.smooth_check.setChecked(False)
    w.start_demo()
    qtbot.waitUntil(lambda: w.results >= 2, timeout=15000)
    assert w.last.sideband == "+1" and "Sideband in use: +1 (default, not stated" in w.sideband_label.text()
    assert "flipped" not in w.sideband_label.text()
    w.flip_check.setChecked(True)
    qtbot.waitUntil(lambda: w.last.sideband == "-1", timeout=10000)
    assert "Sideband in use: -1" in w.sideband_label.text() and "flipped by you" in w.sideband_label.text()
    r = w.last  # the simulated camera is a +1 microscope: flipped, the sweep finds the mirror image
    if r.z_true_m is not None and abs(r.z_true_m) > 8e-6:
        assert np.sign(r.z_pred_m) == -np.sign(r.z_true_m)
