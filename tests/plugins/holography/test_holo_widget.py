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
    w.open_file(path, start=False)  # the file's own optics are shown, locked, before it streams
    assert not w.wl_spin.isEnabled() and "HDF5 stack states its own optics" in w.optics_note.text()
    assert w.na_spin.value() == pytest.approx(attrs["na"], abs=0.005)
    w.start()
    qtbot.waitUntil(lambda: w.results >= 2, timeout=15000)
    assert w.last.z_true_m in set(z.tolist()) and "hdf5:s.h5" in w.source_label.text()
    assert w.last.background == "recorded" and "recorded" in w.background_label.text()


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


# the live view tells the truth -----------------------------------------------------------------------------------
def _write_tiff(path, frames) -> None:
    import cv2

    assert cv2.imwritemulti(str(path), [np.ascontiguousarray(f) for f in frames])


def _sim_frames(n: int, size: int = 128, seed: int = 0):
    """n frames of a still simulated specimen and its background hologram (the dhm-offaxis-10x microscope)."""
    from plugins.holography.sources import SimulatedCamera

    cam = SimulatedCamera(size=size, speed_m_s=0.0, seed=seed, paced=False, n_frames=n)
    return [cam.read().data for _ in range(n)], cam.background, cam


def test_simulated_camera_optics_are_locked_and_show_what_the_stream_uses(widget, qtbot):
    w = widget
    assert not w.wl_spin.isEnabled() and not w.na_spin.isEnabled() and not w.preset_combo.isEnabled()
    assert "Locked" in w.optics_note.text() and "simulated camera" in w.optics_note.text()
    w.start_demo()
    qtbot.waitUntil(lambda: w.results >= 1, timeout=15000)
    so = w.engine.stream_optics
    assert w.na_spin.value() == pytest.approx(so.na, abs=0.005) and w.wl_spin.value() == pytest.approx(666.0)
    assert f"NA {so.na:.2f}" in w.stream_optics_label.text() and "In use by the stream" in \
        w.stream_optics_label.text()
    assert not w.wl_spin.isEnabled()  # an edit could not reach the simulated stream, so none can be made
    assert w.preset_combo.currentText() == "dhm-offaxis-10x"
    w.stop()  # stopped, the panel still shows the simulated microscope it will run again (same seed)
    assert w.na_spin.value() == pytest.approx(so.na, abs=0.005) and f"NA {so.na:.2f}" in \
        w.stream_optics_label.text()


def test_optics_edit_reaches_the_stream_of_an_image_file(widget, qtbot, tmp_path):
    frames, _, _ = _sim_frames(3)
    path = tmp_path / "holos.tif"
    _write_tiff(path, frames)
    w = widget
    w.method_combo.setCurrentIndex(w.method_combo.findData("sweep"))
    w.open_file(path)
    qtbot.waitUntil(lambda: w.results >= 1, timeout=15000)
    assert w.wl_spin.isEnabled() and "applies to the stream" in w.optics_note.text()
    w.wl_spin.setValue(532.0)
    w.wl_spin.editingFinished.emit()
    qtbot.waitUntil(lambda: w.running and w.results >= 1, timeout=15000)
    assert w.engine.stream_optics.wavelength_m == pytest.approx(532e-9)
    assert "532.0 nm" in w.stream_optics_label.text() and w.preset_combo.currentText() == "Custom"
    assert w.wl_spin.value() == pytest.approx(532.0)


def test_z_range_reaches_the_autofocus_and_no_focus_in_range_is_shown(widget, qtbot):
    w = widget
    w.method_combo.setCurrentIndex(w.method_combo.findData("sweep"))
    w.smooth_check.setChecked(False)
    w.speed_spin.setValue(0.0)  # the specimen stays at its z0, -34.7 µm for seed 0
    w.start_demo()
    qtbot.waitUntil(lambda: w.results >= 1, timeout=15000)
    z_true = w.last.z_true_m
    assert z_true < -20e-6
    assert w.set_z_range((5e-6, 60e-6))  # beyond the preset's +46 µm: only the new range can give these z
    assert w.running and w.engine.stream_optics.z_range_m == (5e-6, 60e-6)
    qtbot.waitUntil(lambda: w.results >= 2, timeout=15000)
    r = w.last
    assert 5e-6 <= r.z_pred_m <= 60e-6 and r.focus_in_range is False
    w.tick()
    assert "No focus in range" in w.banner.text() and "NO FOCUS IN RANGE" in w.focus_label.text()
    assert w.z_lo_spin.value() == pytest.approx(5.0) and w.z_hi_spin.suffix() == " µm"
    assert w.manual_slider.maximum() * w._slider_unit == pytest.approx(60e-6)
    w.set_z_range((-46e-6, 0.0))  # the focus inside: found, and the warning goes
    qtbot.waitUntil(lambda: w.results >= 2, timeout=15000)
    assert abs(w.last.z_pred_m - z_true) < 5e-6 and w.last.focus_in_range is not False
    w.tick()
    assert "No focus in range" not in w.banner.text() and "NO FOCUS" not in w.focus_label.text()
    assert not w.set_z_range((10e-6, -10e-6)) and "low end" in w.banner.text()


def test_z_range_in_mm_for_a_lensless_microscope(widget):
    w = widget
    w.source_combo.setCurrentIndex(1)  # a file: the optics panel is the stream's
    w.preset_combo.setCurrentIndex(w.preset_combo.findData("inline-lensless"))
    assert w.z_unit_combo.currentText() == "mm" and w.z_lo_spin.value() == pytest.approx(1.0)
    w.z_hi_spin.setValue(30.0)
    w.z_hi_spin.editingFinished.emit()
    assert w.z_range_m == pytest.approx((1e-3, 30e-3)) and "1 … 30 mm" in w.stream_optics_label.text()
    w.z_lo_spin.setValue(40.0)  # typed first, above the high end: nothing applied until the other end follows
    w.z_lo_spin.editingFinished.emit()
    assert w.z_range_m == pytest.approx((1e-3, 30e-3)) and w.z_lo_spin.value() == pytest.approx(40.0)
    w.z_hi_spin.setValue(60.0)
    w.z_hi_spin.editingFinished.emit()
    assert w.z_range_m == pytest.approx((40e-3, 60e-3))


def test_background_hologram_control(widget, qtbot, tmp_path):
    frames, bg, _ = _sim_frames(3)
    path, bg_path = tmp_path / "holos.tif", tmp_path / "bg.tif"
    _write_tiff(path, frames)
    _write_tiff(bg_path, [bg])
    w = widget
    w.method_combo.setCurrentIndex(w.method_combo.findData("sweep"))
    w.open_file(path)
    qtbot.waitUntil(lambda: w.results >= 1, timeout=15000)
    assert w.last.background == "frame" and "estimated from each frame" in w.background_label.text()
    assert "background: none recorded" in w.focus_label.text()
    assert w.set_background_file(bg_path)
    qtbot.waitUntil(lambda: w.running and w.results >= 1, timeout=15000)
    assert w.last.background == "recorded" and "recorded" in w.background_label.text()
    assert "bg.tif" in w.background_label.text() and "bg.tif" in w.background_combo.currentText()
    _write_tiff(tmp_path / "small.tif", [bg[:64, :64]])
    assert not w.set_background_file(tmp_path / "small.tif") and "64×64 px" in w.banner.text()
    w.set_background("none")
    qtbot.waitUntil(lambda: w.running and w.results >= 1, timeout=15000)
    assert w.last.background == "frame" and "ignored by you" in w.background_label.text()


def test_status_says_what_dropped_and_each_pixel_mean_and_record_shows_disk_rate(widget, qtbot, tmp_path):
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtWidgets import QScrollArea

    w = widget
    w.resize(758, 629)  # the tab's room in a 1024×700 window with the model zoo docked
    qtbot.wait(50)
    assert w.start_recording(tmp_path / "rec.h5")
    qtbot.waitUntil(lambda: w.engine.recorder.flushed >= 2, timeout=20000)
    qtbot.wait(600)
    w.tick()
    text = w.stats_label.text()
    assert "newest frame wins, dropped" in text and "Newest frame wins" in w.stats_label.toolTip()
    assert "reconstruction pixel" in text and "(optics pixel 0.500 µm)" in text
    rec_text = w.record_label.text()
    assert "MB/s to disk" in rec_text and "free" in rec_text and "rec.h5" in rec_text
    rate = float(rec_text.split(" MB/s")[0].split("· ")[-1])
    assert rate > 0
    assert not w.z_lo_spin.isEnabled() and not w.background_combo.isEnabled()  # they would restart the stream
    b = w.record_button
    assert b.isVisible() and w.rect().contains(QRect(b.mapTo(w, QPoint(0, 0)), b.size()))
    p = b.parentWidget()
    while p is not w:
        assert not isinstance(p, QScrollArea)  # never scrolled out of view
        p = p.parentWidget()
    w.stop_recording()
    assert "saved" in w.record_label.text() and "MB" in w.record_label.text() and w.z_lo_spin.isEnabled()
