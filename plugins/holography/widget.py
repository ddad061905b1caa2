"""The holography widget: live amplitude and phase refocused at the predicted z, a z-versus-time plot, fps and
per-stage latency, method / model / smoothing / manual z, optics presets, source picker and HDF5 recording (on
app.gui.sdk: results reach the UI newest-only, so a slow UI never builds a backlog)."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import VitascopeError
from app.core.plugin_api import Host
from app.gui.sdk import Banner, ModelPicker, PluginWidgetBase, spin_box, style_plot_axes

from .engine import ENGINE_METHODS, HoloEngine, HoloResult
from .optics import PRESETS, Optics

log = logging.getLogger(__name__)
PLUGIN_ID = "holography"
SOURCES = ("Simulated camera", "File (HDF5, TIFF, images, video)", "Camera")
METHOD_LABELS = {"auto": "Auto (best measured)", "vit+refine": "ViT + refine", "vit": "ViT only",
                 "sweep": "Sweep (classical)"}
HISTORY_S = 30.0


class HoloWidget(PluginWidgetBase):
    plugin_id = PLUGIN_ID

    def __init__(self, host: Host, engine: HoloEngine, parent: QWidget | None = None) -> None:
        super().__init__(host, engine, parent)
        self.source_kind = "sim"
        self.sim_size = 512  # side of the simulated camera's frames
        self.file_path: str | None = None
        self.results = 0
        self.last: HoloResult | None = None
        self._error: str | None = None
        self._amp_levels: tuple[float, float] | None = None
        self._history: deque[tuple[float, float, float, float]] = deque(maxlen=2000)
        self._t0: float | None = None
        self._building = True
        self._build()
        self._restore_settings()
        self._building = False
        self.model_combo.refresh(select=self.engine.model_id)
        self.sync_buttons()

    # layout ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.banner = Banner()
        self.source_label = QLabel("Source: simulated DHM camera (dhm-offaxis-10x)")
        self.rec_indicator = QLabel("")
        self.rec_indicator.setStyleSheet("QLabel { color: rgb(220, 40, 40); font-weight: bold; }")
        head = QHBoxLayout()
        head.addWidget(self.source_label, 1)
        head.addWidget(self.rec_indicator)

        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(None)
        self.view.setMinimumSize(420, 220)
        self.amp_title = self.view.addLabel("Amplitude", row=0, col=0)
        self.phase_title = self.view.addLabel("Phase (rad, wrapped)", row=0, col=1)
        self.amp_box = self.view.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.phase_box = self.view.addViewBox(row=1, col=1, lockAspect=True, invertY=True, enableMouse=False)
        self.amp_item = pg.ImageItem(axisOrder="row-major")
        self.phase_item = pg.ImageItem(axisOrder="row-major")
        self.phase_item.setLookupTable(pg.colormap.get("CET-C4").getLookupTable(nPts=256))
        for box, item in ((self.amp_box, self.amp_item), (self.phase_box, self.phase_item)):
            box.addItem(item)
            item.setImage(np.zeros((64, 64), np.float32), autoLevels=False, levels=(0, 1))
            box.autoRange(padding=0)

        self.zplot = pg.PlotWidget()
        self.zplot.setBackground(None)
        self.zplot.setMinimumHeight(150)
        self.zplot.setMouseEnabled(x=False, y=False)
        self.zplot.hideButtons()
        self.zplot.setLabel("left", "z (µm)")
        self.zplot.setLabel("bottom", "time (s)")
        self.zplot.addLegend(offset=(10, 5), colCount=3)
        self.true_curve = self.zplot.plot([], [], name="true z", pen=pg.mkPen((150, 150, 150), width=2,
                                                                              style=Qt.PenStyle.DashLine))
        self.pred_curve = self.zplot.plot([], [], name="predicted", pen=None, symbol="o", symbolSize=4,
                                          symbolPen=None, symbolBrush=(52, 152, 219, 160))
        self.focus_curve = self.zplot.plot([], [], name="refocused at", pen=pg.mkPen((230, 126, 34), width=2))
        self.palette_changed()
        self.stats_label = QLabel("stopped")
        self.stats_label.setWordWrap(True)
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.z_label = QLabel("z —")
        font = self.z_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.z_label.setFont(font)

        left = QVBoxLayout()
        left.addLayout(head)
        left.addWidget(self.banner)
        left.addWidget(self.view, 3)
        zrow = QHBoxLayout()
        zrow.addWidget(self.z_label)
        zrow.addStretch(1)
        left.addLayout(zrow)
        left.addWidget(self.zplot, 2)
        left.addWidget(self.stats_label)

        controls = QWidget()
        cv = QVBoxLayout(controls)
        cv.addWidget(self._build_source())
        cv.addWidget(self._build_focus())
        cv.addWidget(self._build_optics())
        cv.addWidget(self._build_record())
        cv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(300)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addWidget(scroll, 1)

    def _build_source(self) -> QGroupBox:
        box = QGroupBox("Source")
        form = QFormLayout(box)
        self.source_combo = QComboBox()
        self.source_combo.addItems(SOURCES)
        self.source_combo.currentIndexChanged.connect(self._source_kind_changed)
        form.addRow(self.source_combo)
        self.source_pages = QStackedWidget()
        sim = QWidget()
        sf = QFormLayout(sim)
        sf.setContentsMargins(0, 0, 0, 0)
        self.speed_spin = spin_box(0.0, 100.0, 5.0, decimals=1, suffix=" µm/s")
        sf.addRow("z drift", self.speed_spin)
        page_file = QWidget()
        ff = QHBoxLayout(page_file)
        ff.setContentsMargins(0, 0, 0, 0)
        self.file_label = QLabel("(no file)")
        self.file_label.setWordWrap(True)
        self.file_button = QPushButton("Open…")
        self.file_button.clicked.connect(self._open_file_clicked)
        ff.addWidget(self.file_label, 1)
        ff.addWidget(self.file_button)
        page_cam = QWidget()
        cf = QFormLayout(page_cam)
        cf.setContentsMargins(0, 0, 0, 0)
        self.camera_spin = spin_box(0, 16, 0)
        cf.addRow("Camera index", self.camera_spin)
        for page in (sim, page_file, page_cam):
            self.source_pages.addWidget(page)
        form.addRow(self.source_pages)
        self.fps_spin = spin_box(1.0, 200.0, 20.0, decimals=0, suffix=" fps")
        form.addRow("Frame rate", self.fps_spin)
        row = QHBoxLayout()
        self.live_buttons()
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        form.addRow(row)
        return box

    def _build_focus(self) -> QGroupBox:
        box = QGroupBox("Autofocus")
        form = QFormLayout(box)
        self.method_combo = QComboBox()
        for m in [m for m in ("auto", "vit+refine", "vit", "sweep") if m in ENGINE_METHODS]:
            self.method_combo.addItem(METHOD_LABELS.get(m, m), m)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(self.engine.method)))
        self.method_combo.currentIndexChanged.connect(self._method_chosen)
        form.addRow("Method", self.method_combo)
        self.model_combo = ModelPicker(self.host, first=(("Auto (match the stream's optics)", None),),
                                       items=lambda: [(m, m) for m in self.engine.available_models()])
        self.model_combo.chosen.connect(self._model_chosen)
        self.model_combo.refreshed.connect(lambda _mid: self._show_plan())
        form.addRow("Model", self.model_combo)
        self.plan_label = QLabel("")
        self.plan_label.setWordWrap(True)
        form.addRow(self.plan_label)
        self.smooth_check = QCheckBox("Temporal smoothing (robust tracker)")
        self.smooth_check.setChecked(self.engine.smoothing)
        self.smooth_check.toggled.connect(self._smoothing_toggled)
        form.addRow(self.smooth_check)
        self.manual_check = QCheckBox("Manual z")
        self.manual_check.toggled.connect(self._manual_toggled)
        self.manual_slider = QSlider(Qt.Orientation.Horizontal)
        self.manual_slider.setEnabled(False)
        self.manual_slider.valueChanged.connect(self._manual_moved)
        self.manual_value = QLabel("—")
        self.manual_value.setMinimumWidth(70)
        row = QHBoxLayout()
        row.addWidget(self.manual_slider, 1)
        row.addWidget(self.manual_value)
        form.addRow(self.manual_check)
        form.addRow(row)
        self._set_slider_range(self.engine.optics)
        self.unwrap_check = QCheckBox("Unwrap phase")
        self.unwrap_check.toggled.connect(self._unwrap_toggled)
        form.addRow(self.unwrap_check)
        self.flip_check = QCheckBox("Flip z (use the other sideband)")
        self.flip_check.setToolTip("Off-axis: which sideband holds the object wave depends on the tilt of the "
                                   "reference beam. If focus comes out at −z (e.g. objects sharp on the wrong "
                                   "side), flip it — or calibrate on a z-stack, which measures it.")
        self.flip_check.setChecked(self.engine.flip_z)
        self.flip_check.toggled.connect(self._flip_toggled)
        form.addRow(self.flip_check)
        self.sideband_label = QLabel("Sideband: —")
        self.sideband_label.setWordWrap(True)
        form.addRow(self.sideband_label)
        return box

    def _flip_toggled(self, on: bool) -> None:
        self.engine.set_flip_z(on)
        self._show_sideband()

    def _show_sideband(self) -> None:
        side, src = self.engine.sideband_info
        if side is None:
            text = "Sideband: — (in-line)" if src else "Sideband: set when the stream starts"
        else:
            why = ("default, not stated by the stream" if "not stated" in src else "from the calibrated model"
                   if "calibrated" in src else "stated by the stream" if "stated" in src
                   else "from the specimen's phase" if "specimen" in src else "default, not stated by the stream")
            text = f"Sideband in use: {side} ({why}{', flipped by you' if self.engine.flip_z else ''})"
        self.sideband_label.setText(text)
        self.sideband_label.setToolTip(src)

    def _build_optics(self) -> QGroupBox:
        box = QGroupBox("Optics")
        form = QFormLayout(box)
        self.preset_combo = QComboBox()
        for name in PRESETS:
            self.preset_combo.addItem(name, name)
        self.preset_combo.addItem("Custom", None)
        self.preset_combo.currentIndexChanged.connect(self._preset_chosen)
        form.addRow("Preset", self.preset_combo)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["offaxis", "inline"])
        self.wl_spin = spin_box(200.0, 2000.0, 200.0, decimals=1, suffix=" nm")
        self.px_spin = spin_box(0.01, 50.0, 0.01, decimals=3, suffix=" µm")
        self.na_spin = spin_box(0.0, 1.6, 0.0, decimals=2, special="unknown")
        form.addRow("Mode", self.mode_combo)
        form.addRow("Wavelength", self.wl_spin)
        form.addRow("Pixel (object)", self.px_spin)
        form.addRow("NA", self.na_spin)
        self.stream_optics_label = QLabel("")
        self.stream_optics_label.setWordWrap(True)
        form.addRow(self.stream_optics_label)
        self._show_optics(self.engine.optics)
        for w in (self.wl_spin, self.px_spin, self.na_spin):
            w.editingFinished.connect(self._optics_edited)
        self.mode_combo.currentIndexChanged.connect(self._optics_edited)
        return box

    def _build_record(self) -> QGroupBox:
        box = QGroupBox("Recording (HDF5)")
        v = QVBoxLayout(box)
        self.record_button = QPushButton("● Record…")
        self.record_button.setCheckable(True)
        self.record_button.clicked.connect(self._record_clicked)
        self.record_label = QLabel("Frames, timestamps, predicted z, method and optics; flushed every 0.5 s.")
        self.record_label.setWordWrap(True)
        v.addWidget(self.record_button)
        v.addWidget(self.record_label)
        return box

    def palette_changed(self) -> None:
        if not hasattr(self, "zplot"):  # still being built
            return
        colour = self.text_colour()
        style_plot_axes(self.zplot, colour)
        for title in (self.amp_title, self.phase_title):
            title.setText(title.text, color=colour)

    # settings ----------------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.host.settings(PLUGIN_ID)
        method = s.get("method")
        if method in ENGINE_METHODS:
            self.method_combo.setCurrentIndex(self.method_combo.findData(method))
            self.engine.set_method(method)
        if isinstance(s.get("smoothing"), bool):
            self.smooth_check.setChecked(s["smoothing"])
            self.engine.set_smoothing(s["smoothing"])
        if isinstance(s.get("speed_um_s"), int | float):
            self.speed_spin.setValue(float(s["speed_um_s"]))
        if isinstance(s.get("fps"), int | float):
            self.fps_spin.setValue(float(s["fps"]))
        if isinstance(s.get("model"), str):
            self.engine.set_model(s["model"])

    def _save_settings(self) -> None:
        if self._building:
            return
        self.host.save_settings(PLUGIN_ID, {**self.host.settings(PLUGIN_ID), "method": self.engine.method,
                                            "smoothing": self.engine.smoothing, "model": self.engine.model_id,
                                            "speed_um_s": self.speed_spin.value(), "fps": self.fps_spin.value()})

    # models and method -------------------------------------------------------------------------------------
    def _show_plan(self) -> None:
        p = self.engine.plan
        if p.requested == "auto":
            text = p.reason.replace("Auto → ", "Auto → <b>", 1).replace(":", "</b>:", 1) if p.reason else "Auto"
        elif p.method == p.requested:
            text = f"Using <b>{METHOD_LABELS.get(p.method, p.method)}</b>" + (f" with {p.model}" if p.model else "")
        else:
            text = f"Using <b>{METHOD_LABELS.get(p.method, p.method)}</b> instead of {p.requested}"
        self.plan_label.setText(text)
        self._update_banner()

    def _method_chosen(self, _i: int) -> None:
        self.engine.set_method(self.method_combo.currentData())
        self._show_plan()
        self._save_settings()

    def _model_chosen(self, model_id: str | None) -> None:
        self.engine.set_model(model_id)
        self._show_plan()
        self._save_settings()

    def _smoothing_toggled(self, on: bool) -> None:
        self.engine.set_smoothing(on)
        self._save_settings()

    def _unwrap_toggled(self, on: bool) -> None:
        self.engine.unwrap = on
        self._amp_levels = None

    def _set_slider_range(self, optics: Optics) -> None:
        lo, hi = optics.z_range_m
        scale = 10 if hi - lo < 1e-3 else 0.1  # 0.1 µm steps for microscopes, 10 µm for lensless
        self._slider_unit = 1e-6 / scale
        self.manual_slider.blockSignals(True)
        self.manual_slider.setRange(int(math.floor(lo / self._slider_unit)), int(math.ceil(hi / self._slider_unit)))
        self.manual_slider.blockSignals(False)
        self._manual_label()

    def _manual_label(self) -> None:
        z = self.manual_slider.value() * self._slider_unit
        self.manual_value.setText(f"{z * 1e6:.1f} µm" if abs(z) < 1e-3 else f"{z * 1e3:.2f} mm")

    def _manual_toggled(self, on: bool) -> None:
        self.manual_slider.setEnabled(on)
        if on:
            z = self.last.z_m if self.last is not None else 0.0
            self.manual_slider.blockSignals(True)
            self.manual_slider.setValue(int(round(z / self._slider_unit)))
            self.manual_slider.blockSignals(False)
            self._manual_moved(self.manual_slider.value())
        else:
            self.engine.set_manual_z(None)

    def _manual_moved(self, value: int) -> None:
        self._manual_label()
        if self.manual_check.isChecked():
            self.engine.set_manual_z(value * self._slider_unit)

    def set_manual_z_um(self, z_um: float | None) -> None:
        """Programmatic manual override (µm), as moving the slider would."""
        if z_um is None:
            self.manual_check.setChecked(False)
            return
        self.manual_check.setChecked(True)
        self.manual_slider.setValue(int(round(z_um * 1e-6 / self._slider_unit)))

    # optics ------------------------------------------------------------------------------------------------
    def _show_optics(self, o: Optics) -> None:
        for w in (self.mode_combo, self.wl_spin, self.px_spin, self.na_spin, self.preset_combo):
            w.blockSignals(True)
        self.mode_combo.setCurrentText(o.mode)
        self.wl_spin.setValue(o.wavelength_m * 1e9)
        self.px_spin.setValue(o.pixel_size_m * 1e6)
        self.na_spin.setValue(o.na or 0.0)
        idx = self.preset_combo.findData(self.engine.preset_name) if self.engine.preset_name else -1
        self.preset_combo.setCurrentIndex(idx if idx >= 0 else self.preset_combo.count() - 1)
        for w in (self.mode_combo, self.wl_spin, self.px_spin, self.na_spin, self.preset_combo):
            w.blockSignals(False)

    def _preset_chosen(self, _i: int) -> None:
        name = self.preset_combo.currentData()
        if name is None:
            return
        o = self.engine.set_preset(name)
        self._show_optics(o)
        self._set_slider_range(o)
        self._optics_changed()

    def _optics_edited(self) -> None:
        base = self.engine.optics
        try:
            o = Optics(self.mode_combo.currentText(), self.wl_spin.value() * 1e-9, self.px_spin.value() * 1e-6,
                       na=self.na_spin.value() or None, z_range_m=base.z_range_m, medium_index=base.medium_index)
        except VitascopeError as e:
            self._error = str(e)
            self._update_banner()
            return
        if o.to_dict() | {"name": ""} == base.to_dict() | {"name": ""}:
            return
        self.engine.set_optics(o)
        self._show_optics(o)
        self._optics_changed()

    def _optics_changed(self) -> None:
        """Files and cameras use the panel's optics: restart them; simulated and HDF5 streams carry their own."""
        if self.running and self.source_kind != "sim" and not str(self.file_path or "").lower().endswith(
                (".h5", ".hdf5", ".hdf")):
            self.stop()
            self.start()

    # sources -----------------------------------------------------------------------------------------------
    def _source_kind_changed(self, i: int) -> None:
        self.source_pages.setCurrentIndex(i)
        self.source_kind = ("sim", "file", "camera")[i]

    def _open_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open holograms", "", "Holograms (*.h5 *.hdf5 *.tif *.tiff "
                                              "*.png *.jpg *.bmp *.avi *.mp4 *.mkv *.mov);;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path, start: bool = True) -> None:
        self.file_path = str(path)
        self.file_label.setText(Path(path).name)
        self.source_combo.setCurrentIndex(1)
        if start:
            self.stop()
            self.start()

    def _make_source(self) -> Any:
        if self.source_kind == "sim":
            return self.engine.demo_source(fps=self.fps_spin.value(), speed_m_s=self.speed_spin.value() * 1e-6,
                                           size=self.sim_size)
        if self.source_kind == "camera":
            return self.engine.open_source(f"camera:{self.camera_spin.value()}")
        if not self.file_path:
            raise VitascopeError("choose a file first (Open…)")
        return self.engine.open_source(self.file_path, fps=self.fps_spin.value(), loop=True)

    def start(self) -> None:
        if self.running:
            return
        try:
            source = self._make_source()
        except VitascopeError as e:
            self._error = str(e)
            self._update_banner()
            self.sync_buttons()
            return
        except Exception as e:  # a broken file or driver must show, not crash
            log.exception("source failed")
            self._error = f"The source could not start: {e.__class__.__name__}: {e}"
            self._update_banner()
            return
        self._error = None
        self.engine.attach(source)
        o = self.engine.stream_optics
        self._set_slider_range(o)
        self.stream_optics_label.setText(f"Stream: {o.mode}, {o.wavelength_m * 1e9:.0f} nm, pixel "
                                         f"{o.pixel_size_m * 1e6:.3g} µm" + (f", NA {o.na:.2f}" if o.na else ""))
        self.source_label.setText(f"Source: {source.name}")
        self._history.clear()
        self._t0 = None
        self._amp_levels = None
        self.results = 0
        self.start_stream(source, self.engine.process, self.show_result)
        self._show_plan()
        self._save_settings()
        self.sync_buttons()

    def start_demo(self) -> None:
        """Used by `vitascope gui --smoke`: the simulated camera."""
        self.source_combo.setCurrentIndex(0)
        self.start()

    def stop(self) -> None:
        self.stop_recording()
        super().stop()

    # results -----------------------------------------------------------------------------------------------
    def show_result(self, r: HoloResult) -> None:
        self.results += 1
        self.last = r
        amp = r.amplitude
        sub = amp[:: max(1, amp.shape[0] // 128), :: max(1, amp.shape[1] // 128)]
        lo, hi = (float(v) for v in np.percentile(sub, (0.5, 99.5)))
        if self._amp_levels is None:
            self._amp_levels = (lo, max(hi, lo + 1e-6))
        else:  # app-owned levels: follow slowly, no per-frame autoLevels flicker
            a, b = self._amp_levels
            self._amp_levels = (0.9 * a + 0.1 * lo, max(0.9 * b + 0.1 * hi, 0.9 * a + 0.1 * lo + 1e-6))
        self.amp_item.setImage(amp, autoLevels=False, levels=self._amp_levels)
        if r.unwrapped:
            p = r.phase[:: max(1, r.phase.shape[0] // 128), :: max(1, r.phase.shape[1] // 128)]
            levels = tuple(float(v) for v in np.percentile(p, (0.5, 99.5)))
            self.phase_title.setText("Phase (rad, unwrapped)")
        else:
            levels = (-math.pi, math.pi)
            self.phase_title.setText("Phase (rad, wrapped)")
        self.phase_item.setImage(r.phase, autoLevels=False, levels=levels)
        if self.results == 1:
            self.amp_box.autoRange(padding=0)
            self.phase_box.autoRange(padding=0)
        if self._t0 is None:
            self._t0 = r.timestamp
        nan = math.nan
        self._history.append((r.timestamp - self._t0, r.z_m * 1e6, nan if r.z_pred_m is None else r.z_pred_m * 1e6,
                              nan if r.z_true_m is None else r.z_true_m * 1e6))
        h = np.array(self._history)
        h = h[h[:, 0] >= h[-1, 0] - HISTORY_S]
        self.focus_curve.setData(h[:, 0], h[:, 1])
        ok = np.isfinite(h[:, 2])
        self.pred_curve.setData(h[ok, 0], h[ok, 2])
        ok = np.isfinite(h[:, 3])
        self.true_curve.setData(h[ok, 0], h[ok, 3])
        text = f"z {r.z_m * 1e6:+.2f} µm · {r.method}"
        if r.z_true_m is not None:
            text += f" · true {r.z_true_m * 1e6:+.2f} µm (error {(r.z_m - r.z_true_m) * 1e6:+.2f})"
        self.z_label.setText(text)
        if self.results == 1 or r.sideband != getattr(self, "_shown_sideband", None):
            self._shown_sideband = r.sideband
            self._show_sideband()
        if r.notes != self.engine.plan.notes:
            self._show_plan()

    # status ------------------------------------------------------------------------------------------------
    def _update_banner(self) -> None:
        msgs = []
        error = self._error
        rec = self.engine.recorder
        if self.stream is not None and self.stream.stats.error:
            error = f"The stream stopped: {self.stream.stats.error}"
        if error:
            msgs.append(f"<b>{error}</b>")
        if rec is not None and rec.error:
            msgs.append(f"<b>Recording stopped:</b> {rec.error}")
        msgs += list(self.engine.plan.notes)
        self.banner.show_message("<br>".join(msgs), "error" if error or (rec is not None and rec.error)
                                 else "warning")

    def tick(self) -> None:
        stages, px = "", ""
        if self.last is not None and self.stream is not None:
            t = self.last.timings_ms
            parts = [f"{k} {t[k]:.1f}" for k in ("focus", "reconstruct", "unwrap") if k in t]
            stages = f" ({', '.join(parts)})" if parts else ""
            px = f" · pixel {self.last.pixel_size_m * 1e6:.2f} µm"
        self.stats_label.setText(self.stream_stats(stages) + px)
        rec = self.engine.recorder
        if rec is not None and rec.running:
            blink = "●" if int(time.monotonic() * 2) % 2 == 0 else "○"
            self.rec_indicator.setText(f"{blink} REC {int(rec.elapsed_s) // 60:02d}:{int(rec.elapsed_s) % 60:02d}"
                                       f" · {rec.written} frames")
            self.record_label.setText(f"Recording to {rec.path} · flushed {rec.flushed} frames")
        elif rec is not None and rec.error:
            self.stop_recording()
        self._update_banner()

    def sync_buttons(self) -> None:
        super().sync_buttons()
        recording = self.engine.recorder is not None and self.engine.recorder.running
        self.record_button.blockSignals(True)
        self.record_button.setChecked(recording)
        self.record_button.setText("■ Stop recording" if recording else "● Record…")
        self.record_button.blockSignals(False)
        if not recording:
            self.rec_indicator.setText("")

    # recording ---------------------------------------------------------------------------------------------
    def _record_clicked(self, checked: bool) -> None:
        if not checked:
            self.stop_recording()
            return
        default = self.host.data_dir(PLUGIN_ID) / time.strftime("recording-%Y%m%d-%H%M%S.h5")
        path, _ = QFileDialog.getSaveFileName(self, "Record to HDF5", str(default), "HDF5 (*.h5 *.hdf5)")
        if path:
            self.start_recording(path)
        self.sync_buttons()

    def start_recording(self, path: str | Path) -> bool:
        """Record the live stream to `path` (starts the stream if needed); False with a message if it cannot."""
        if not self.running:
            self.start()
        if not self.running:
            return False
        try:
            rec = self.engine.start_recording(path)
        except VitascopeError as e:
            self._error = str(e)
            self.record_label.setText(str(e))
            self._update_banner()
            self.sync_buttons()
            return False
        self._error = None
        self.record_label.setText(f"Recording to {rec.path}")
        self.sync_buttons()
        return True

    def stop_recording(self) -> None:
        rec = self.engine.stop_recording()
        if rec is not None:
            self.record_label.setText(f"{rec.path.name}: {rec.written} frames"
                                      + (f" — {rec.error}" if rec.error else " saved"))
            if rec.error:
                self._error = f"Recording stopped: {rec.error}"
        if hasattr(self, "record_button"):
            self.sync_buttons()
