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

from .engine import DEFAULT_PRESET, ENGINE_METHODS, HoloEngine, HoloResult
from .optics import PRESETS, Z_LIMIT_M, Optics, preset
from .readers import HDF5_SUFFIXES, load_sidecar, resolve_optics
from .widget_status import (
    BACKGROUND_TEXT,
    DROPPED_TIP,
    PIXEL_TIP,
    DiskRate,
    focus_text,
    human_bytes,
    optics_text,
    pixel_text,
    range_text,
    z_text,
)
from .widget_stream import NO_BACKGROUND, STREAM_BACKGROUND, OverriddenSource, check_background, load_background

log = logging.getLogger(__name__)
PLUGIN_ID = "holography"
SOURCES = ("Simulated camera", "File (HDF5, TIFF, images, video)", "Camera")
METHOD_LABELS = {"auto": "Auto (best measured)", "vit+refine": "ViT + refine", "vit": "ViT only",
                 "sweep": "Sweep (classical)"}
HISTORY_S = 30.0
BACKGROUND_CHOICES = (("The stream's own", STREAM_BACKGROUND), ("None (estimate from each frame)", NO_BACKGROUND),
                      ("From a file…", "file"))
FOCUS_COLOURS = {"ok": "rgb(39, 174, 96)", "uncertain": "rgb(211, 140, 0)", "out": "rgb(220, 40, 40)"}


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
        self._plot_scale = 1e6  # z plot units per metre
        self.z_range_m: tuple[float, float] | None = None  # the user's z range; None = the stream's own
        self.background_choice: str = STREAM_BACKGROUND  # or NO_BACKGROUND, or "file" (self.background_file)
        self.background_file: str | None = None
        self._background: np.ndarray | None = None  # the loaded background hologram
        self._frame_shape: tuple[int, ...] | None = None  # the raw frames' shape (set by the worker thread)
        self._source: OverriddenSource | None = None
        self._file_optics: Optics | None = None  # an HDF5 stack's own optics (shown before it streams)
        self._sim_optics: Optics | None = None  # the simulated camera's optics (known once it has run)
        self._stream_kind, self._stream_hdf5 = "sim", False  # the running stream's source kind
        self._disk: DiskRate | None = None
        self._building = True
        self._build()
        self._restore_settings()
        self._building = False
        self.model_combo.refresh(select=self.engine.model_id)
        self._refresh_optics()
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
        self.view.setMinimumSize(380, 220)
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
        self.stats_label.setToolTip(f"Dropped frames. {DROPPED_TIP}\n\n{PIXEL_TIP}")
        self.z_label = QLabel("z —")
        font = self.z_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.z_label.setFont(font)
        self.z_label.setWordWrap(True)  # a long readout wraps instead of widening the page

        left = QVBoxLayout()
        left.addLayout(head)
        left.addWidget(self.banner)
        left.addWidget(self.view, 3)
        zrow = QHBoxLayout()
        zrow.addWidget(self.z_label)
        zrow.addStretch(1)
        left.addLayout(zrow)
        self.focus_label = QLabel("Focus: —")
        self.focus_label.setWordWrap(True)
        self._focus_tip = ("How far to trust z: the sharpness curve's peak over the z range (sweep and "
                           "vit+refine). \"No focus in range\": the sharpest plane is on an edge of the range (or "
                           "the in-line hologram plane): widen the z range.")
        self.focus_label.setToolTip(self._focus_tip)
        left.addWidget(self.focus_label)
        left.addWidget(self.zplot, 2)
        left.addWidget(self.stats_label)

        controls = QWidget()
        cv = QVBoxLayout(controls)
        cv.addWidget(self._build_source())
        cv.addWidget(self._build_focus())
        cv.addWidget(self._build_background())
        cv.addWidget(self._build_optics())
        cv.addStretch(1)
        for combo in controls.findChildren(QComboBox):  # long entries elide instead of widening the panel
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        self.controls = controls
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumWidth(300)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self._build_record())  # Start / Stop / Record: always in view, never scrolled away
        right.addWidget(scroll, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addLayout(right, 1)

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
        self.model_combo = ModelPicker(self.host, first=(("Auto (by the optics)", None),),
                                       items=lambda: [(m, m) for m in self.engine.available_models()])
        self.model_combo.setToolTip("Auto: the installed autofocus model whose card matches the stream's optics")
        self.model_combo.chosen.connect(self._model_chosen)
        self.model_combo.refreshed.connect(lambda _mid: self._show_plan())
        form.addRow("Model", self.model_combo)
        self.plan_label = QLabel("")
        self.plan_label.setWordWrap(True)
        form.addRow(self.plan_label)
        self._build_z_range(form)
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

    def _build_z_range(self, form: QFormLayout) -> None:
        tip = ("The range the autofocus searches (and the manual z slider spans). A learned model also stays "
               "inside the range it was trained on. Changing it restarts the stream.")
        self.z_lo_spin = spin_box(-1e6, 1e6, 0.0, decimals=1)
        self.z_hi_spin = spin_box(-1e6, 1e6, 0.0, decimals=1)
        self.z_unit_combo = QComboBox()
        self.z_unit_combo.addItems(["µm", "mm"])
        self.z_reset_button = QPushButton("Reset")
        self.z_reset_button.setToolTip("Back to the z range of the stream's optics (preset, file or camera)")
        row = QHBoxLayout()
        row.addWidget(self.z_unit_combo)
        row.addWidget(self.z_reset_button)
        row.addStretch(1)
        form.addRow("z from", self.z_lo_spin)
        form.addRow("z to", self.z_hi_spin)
        form.addRow("", row)
        for w in (self.z_lo_spin, self.z_hi_spin, self.z_unit_combo, self.z_reset_button):
            w.setToolTip(tip if w is not self.z_reset_button else w.toolTip())
        self._show_z_range(self.engine.optics.z_range_m)
        self.z_lo_spin.editingFinished.connect(self._z_range_edited)
        self.z_hi_spin.editingFinished.connect(self._z_range_edited)
        self.z_unit_combo.currentIndexChanged.connect(self._z_unit_changed)
        self.z_reset_button.clicked.connect(lambda: self.set_z_range(None))

    def _z_scale(self) -> float:
        return 1e-6 if self.z_unit_combo.currentText() == "µm" else 1e-3

    def _show_z_range(self, z_range_m: tuple[float, float], unit: str | None = None) -> None:
        """Show `z_range_m` in the z range boxes (in µm below 1 mm, else mm, unless `unit` is given)."""
        lo, hi = z_range_m
        unit = unit or ("µm" if max(abs(lo), abs(hi)) < 1e-3 else "mm")
        for w in (self.z_lo_spin, self.z_hi_spin, self.z_unit_combo):
            w.blockSignals(True)
        self.z_unit_combo.setCurrentText(unit)
        scale = self._z_scale()
        limit = Z_LIMIT_M / scale
        for w, v in ((self.z_lo_spin, lo), (self.z_hi_spin, hi)):
            w.setRange(-limit, limit)
            w.setDecimals(1 if unit == "µm" else 3)
            w.setSingleStep(1.0 if unit == "µm" else 0.1)
            w.setSuffix(f" {unit}")
            w.setValue(v / scale)
        for w in (self.z_lo_spin, self.z_hi_spin, self.z_unit_combo):
            w.blockSignals(False)

    def _z_unit_changed(self, _i: int) -> None:
        old = 1e-3 if self.z_unit_combo.currentText() == "µm" else 1e-6  # the unit shown until now
        z = (self.z_lo_spin.value() * old, self.z_hi_spin.value() * old)
        self._show_z_range(z, self.z_unit_combo.currentText())

    def _z_range_edited(self) -> None:
        scale = self._z_scale()
        z = (self.z_lo_spin.value() * scale, self.z_hi_spin.value() * scale)
        if z[0] >= z[1]:  # half-way through typing a new range: wait for the other end
            self.z_lo_spin.setToolTip("z from must be below z to: the range in use is still "
                                      + range_text(self._z_range_in_use()))
            return
        self.z_lo_spin.setToolTip(self.z_hi_spin.toolTip())
        if z != self._z_range_in_use():
            self.set_z_range(z)

    def _z_range_in_use(self) -> tuple[float, float]:
        if self.z_range_m is not None:
            return self.z_range_m
        return (self.engine.stream_optics if self.running else self._panel_optics()).z_range_m

    def set_z_range(self, z_range_m: tuple[float, float] | None) -> bool:
        """Search `z_range_m` (metres, low < high) from now on, None for the stream's own; restarts a running
        stream. False with a message when the range is not usable."""
        if z_range_m is not None:
            lo, hi = float(z_range_m[0]), float(z_range_m[1])
            if not (lo < hi and max(abs(lo), abs(hi)) <= Z_LIMIT_M):
                self._error = f"z range {z_text(lo)} … {z_text(hi)}: the low end must be below the high end"
                self._update_banner()
                self._show_z_range(self._z_range_in_use())
                return False
            z_range_m = (lo, hi)
        self._error = None
        self.z_range_m = z_range_m
        self._show_z_range(self._z_range_in_use())
        self._restart_if_running()
        self._show_stream_optics()
        return True

    def _restart_if_running(self) -> None:
        if self.running:
            self.stop()
            self.start()

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

    def _build_background(self) -> QGroupBox:
        box = QGroupBox("Background hologram")
        form = QFormLayout(box)
        self.background_combo = QComboBox()
        for text, key in BACKGROUND_CHOICES:
            self.background_combo.addItem(text, key)
        self.background_combo.setToolTip("A hologram recorded without the specimen (same camera settings) divides "
                                         "out the reference beam and the illumination; without one, off-axis "
                                         "fields are estimated from each frame and z is less accurate.")
        self.background_combo.activated.connect(self._background_chosen)
        form.addRow(self.background_combo)
        self.background_label = QLabel("In use: — (shown when the stream runs)")
        self.background_label.setWordWrap(True)
        form.addRow(self.background_label)
        return box

    def _background_chosen(self, _i: int) -> None:
        key = self.background_combo.currentData()
        if key == "file":
            path, _ = QFileDialog.getOpenFileName(self, "Open a background hologram", "", "Holograms (*.tif *.tiff "
                                                  "*.png *.jpg *.bmp *.h5 *.hdf5);;All files (*)")
            if not path or not self.set_background_file(path):
                self._show_background_choice()
            return
        self.set_background(key)

    def set_background_file(self, path: str | Path) -> bool:
        """Use the background hologram in `path` for the stream (restarts it); False with a message if unusable."""
        try:
            bg = load_background(path)
            check_background(bg, self._frame_shape)
        except VitascopeError as e:
            self._error = f"Background not used: {e}"
            self._update_banner()
            return False
        self._background, self.background_file = bg, str(path)
        self.set_background("file")
        return True

    def set_background(self, choice: str) -> None:
        """STREAM_BACKGROUND, NO_BACKGROUND or "file" (the one loaded last); restarts a running stream."""
        if choice == "file" and self._background is None:
            choice = STREAM_BACKGROUND
        self._error = None
        self.background_choice = choice
        self._show_background_choice()
        self._restart_if_running()

    def _show_background_choice(self) -> None:
        i = self.background_combo.findData(self.background_choice)
        self.background_combo.setCurrentIndex(max(0, i))
        if self.background_choice == "file" and self.background_file:
            self.background_combo.setItemText(i, f"File: {Path(self.background_file).name}")
        self._show_background_in_use()

    def _show_background_in_use(self) -> None:
        r = self.last if self.running else None
        origin = {"file": f" ({Path(self.background_file or '').name})", NO_BACKGROUND: " (ignored by you)"}.get(
            self.background_choice, " (the stream's)")
        if r is None:
            text = "In use: — (shown when the stream runs)"
        elif r.background == "recorded":
            text = f"In use: {BACKGROUND_TEXT['recorded']}{origin if origin != ' (ignored by you)' else ''}"
        else:
            text = f"In use: {BACKGROUND_TEXT.get(r.background, r.background)}" + (
                origin if self.background_choice == NO_BACKGROUND else "")
        self.background_label.setText(text)

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
        self.optics_note = QLabel("")
        self.optics_note.setWordWrap(True)
        form.addRow(self.optics_note)
        self.stream_optics_label = QLabel("")
        self.stream_optics_label.setWordWrap(True)
        self.stream_optics_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.stream_optics_label)
        self._show_optics(self.engine.optics)
        for w in (self.wl_spin, self.px_spin, self.na_spin):
            w.editingFinished.connect(self._optics_edited)
        self.mode_combo.currentIndexChanged.connect(self._optics_edited)
        return box

    def _build_record(self) -> QWidget:
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        self.live_buttons()
        self.record_button = QPushButton("● Record…")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record to HDF5: frames, timestamps, predicted z, method and optics; "
                                      "flushed every 0.5 s.")
        self.record_button.clicked.connect(self._record_clicked)
        row = QHBoxLayout()
        row.addWidget(self.start_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.record_button)
        self.record_label = QLabel("Record: frames, z, method and optics to HDF5.")
        self.record_label.setWordWrap(True)
        v.addLayout(row)
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
    def _optics_lock(self) -> str | None:
        """Why the optics fields cannot change the running (else the selected) source's stream, or None."""
        kind, hdf5 = (self._stream_kind, self._stream_hdf5) if self.running else (self.source_kind,
                                                                                  self._is_hdf5())
        if kind == "sim":
            return ("Locked: the simulated camera images with its own optics (the dhm-offaxis-10x microscope; it "
                    "draws its NA and carrier when it starts), so an edit could only mis-reconstruct it. Edits "
                    "apply to image files, videos and cameras.")
        if kind == "file" and hdf5:
            return ("Locked: this HDF5 stack states its own optics (its attributes), and they are used as they "
                    "are. Edits apply to image files, videos and cameras.")
        return None

    def _is_hdf5(self) -> bool:
        return Path(self.file_path or "").suffix.lower() in HDF5_SUFFIXES

    def _panel_optics(self) -> Optics:
        """The optics the selected source will stream with, before the z range set here."""
        if self.source_kind == "sim":
            return self._sim_optics or preset(DEFAULT_PRESET).optics
        if self.source_kind == "file" and self._is_hdf5() and self._file_optics is not None:
            return self._file_optics
        return self.engine.optics

    def _refresh_optics(self) -> None:
        """Show the optics the selected (or running) source really uses, locked or editable, and its z range."""
        lock = self._optics_lock()
        o = self.engine.stream_optics if self.running else self._panel_optics()
        self._show_optics(o if lock else self.engine.optics, o.name if lock else self.engine.preset_name)
        self._show_z_range(self._z_range_in_use())
        self._show_stream_optics()
        self._sync_locks()

    def _sync_locks(self) -> None:
        """Enable what may change now: optics only for sources that use them, nothing that restarts the stream
        while it records."""
        lock = self._optics_lock()
        recording = self.engine.recorder is not None and self.engine.recorder.running
        busy = "Stop recording to change this: applying it restarts the stream." if recording else ""
        for w in (self.preset_combo, self.mode_combo, self.wl_spin, self.px_spin, self.na_spin):
            w.setEnabled(lock is None and not recording)
        for w in (self.z_lo_spin, self.z_hi_spin, self.z_unit_combo, self.z_reset_button, self.background_combo):
            w.setEnabled(not recording)
        if lock:
            note = lock
        elif recording:
            note = busy
        else:
            note = "Used by this source: an edit applies to the stream at once (it restarts)."
        if self.optics_note.text() != note:
            self.optics_note.setText(note)

    def _show_stream_optics(self) -> None:
        if self.running:
            text = "In use by the stream: " + optics_text(self.engine.stream_optics)
        else:
            o = self._panel_optics()
            o = o.with_(z_range_m=self.z_range_m) if self.z_range_m is not None else o
            text = "Not streaming. The next stream: " + optics_text(o) + (
                " (NA and carrier drawn at start)" if self.source_kind == "sim" and self._sim_optics is None else
                " (from the file)" if self._is_hdf5() and self.source_kind == "file" else "")
        self.stream_optics_label.setText(text)

    def _show_optics(self, o: Optics, preset_name: str | None = None) -> None:
        for w in (self.mode_combo, self.wl_spin, self.px_spin, self.na_spin, self.preset_combo):
            w.blockSignals(True)
        self.mode_combo.setCurrentText(o.mode)
        self.wl_spin.setValue(o.wavelength_m * 1e9)
        self.px_spin.setValue(o.pixel_size_m * 1e6)
        self.na_spin.setValue(o.na or 0.0)
        idx = self.preset_combo.findData(preset_name) if preset_name else -1
        self.preset_combo.setCurrentIndex(idx if idx >= 0 else self.preset_combo.count() - 1)
        for w in (self.mode_combo, self.wl_spin, self.px_spin, self.na_spin, self.preset_combo):
            w.blockSignals(False)

    def _preset_chosen(self, _i: int) -> None:
        name = self.preset_combo.currentData()
        if name is None or self._optics_lock():
            return
        self.engine.set_preset(name)
        self.z_range_m = None  # a new microscope: its own z range
        self._optics_changed()

    def _optics_edited(self) -> None:
        if self._optics_lock():
            return
        base = self.engine.optics
        try:
            o = Optics(self.mode_combo.currentText(), self.wl_spin.value() * 1e-9, self.px_spin.value() * 1e-6,
                       na=self.na_spin.value() or None, z_range_m=base.z_range_m, medium_index=base.medium_index,
                       sideband=base.sideband)
        except VitascopeError as e:
            self._error = str(e)
            self._update_banner()
            return
        if o.to_dict() | {"name": ""} == base.to_dict() | {"name": ""}:
            return
        self._error = None
        self.engine.set_optics(o)
        self._optics_changed()

    def set_optics(self, o: Optics) -> bool:
        """Use `o` as the panel's optics, as editing the fields would; False (with a note) when the selected source
        brings its own optics."""
        if self._optics_lock():
            return False
        self.engine.set_optics(o)
        self._optics_changed()
        return True

    def _optics_changed(self) -> None:
        """The panel's optics changed (only for sources that use them): restart the stream with them."""
        self._restart_if_running()
        self._refresh_optics()
        if not self.running:
            self._set_slider_range(self._panel_optics().with_(z_range_m=self._z_range_in_use()))

    # sources -----------------------------------------------------------------------------------------------
    def _source_kind_changed(self, i: int) -> None:
        self.source_pages.setCurrentIndex(i)
        self.source_kind = ("sim", "file", "camera")[i]
        self._frame_shape = None
        if not self.running:
            self._refresh_optics()

    def _open_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open holograms", "", "Holograms (*.h5 *.hdf5 *.tif *.tiff "
                                              "*.png *.jpg *.bmp *.avi *.mp4 *.mkv *.mov);;All files (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path, start: bool = True) -> None:
        """Stream holograms from `path`. An HDF5 stack brings its optics; an image file or video with a JSON
        sidecar stating optics puts them in the (editable) optics panel."""
        self.stop()
        self.file_path = str(path)
        self.file_label.setText(Path(path).name)
        self._file_optics = None
        try:
            self._adopt_file_optics(Path(path))
        except VitascopeError as e:
            self._error = str(e)
            self._update_banner()
        if self.source_combo.currentIndex() != 1:
            self.source_combo.setCurrentIndex(1)
        else:
            self._source_kind_changed(1)
        if start:
            self.start()

    def _adopt_file_optics(self, p: Path) -> None:
        if p.suffix.lower() in HDF5_SUFFIXES:
            from .hdf5 import StackReader

            r = StackReader(p)
            self._file_optics = r.optics
            r.close()
            return
        sidecar = load_sidecar(p) if p.exists() else {}
        if any(sidecar.get(k) is not None for k in ("mode", "wavelength_m", "pixel_size_m", "na")):
            base = {k: v for k, v in self.engine.optics.to_dict().items() if k not in ("name", "carrier")}
            self.engine.set_optics(resolve_optics(p, None, base=base))
            self.z_range_m = None

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
        background = self._background if self.background_choice == "file" else self.background_choice
        source = OverriddenSource(source, self.z_range_m, background)  # type: ignore[arg-type]
        self._error = None
        self._source = source
        self._stream_kind, self._stream_hdf5 = self.source_kind, self._is_hdf5()
        self.engine.attach(source)
        if self.source_kind == "sim" and source.source_optics is not None:
            self._sim_optics = source.source_optics  # the same seed: the same microscope next time
        self._set_slider_range(self.engine.stream_optics)
        self.source_label.setText(f"Source: {source.name}")
        self._history.clear()
        lo, hi = self.engine.stream_optics.z_range_m
        self._plot_scale = 1e6 if max(abs(lo), abs(hi)) < 1e-3 else 1e3  # the z plot in µm, or mm (lensless)
        self.zplot.setLabel("left", "z (µm)" if self._plot_scale == 1e6 else "z (mm)")
        self._t0 = None
        self._amp_levels = None
        self.last = None
        self.results = 0
        self.start_stream(source, self._process, self.show_result)
        self._refresh_optics()
        self._show_background_in_use()
        self.focus_label.setText("Focus: —")
        self._show_plan()
        self._save_settings()
        self.sync_buttons()

    def _process(self, frame: Any) -> HoloResult:
        """The engine's per-frame work (worker thread); notes the frames' shape for the background check."""
        self._frame_shape = tuple(frame.data.shape)
        return self.engine.process(frame)

    def start_demo(self) -> None:
        """Used by `vitascope gui --smoke`: the simulated camera."""
        self.source_combo.setCurrentIndex(0)
        self.start()

    def stop(self) -> None:
        self.stop_recording()
        super().stop()
        if hasattr(self, "focus_label") and not self.closed:
            self._refresh_optics()
            self._show_background_in_use()

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
        k = self._plot_scale
        self._history.append((r.timestamp - self._t0, r.z_m * k, nan if r.z_pred_m is None else r.z_pred_m * k,
                              nan if r.z_true_m is None else r.z_true_m * k))
        h = np.array(self._history)
        h = h[h[:, 0] >= h[-1, 0] - HISTORY_S]
        self.focus_curve.setData(h[:, 0], h[:, 1])
        ok = np.isfinite(h[:, 2])
        self.pred_curve.setData(h[ok, 0], h[ok, 2])
        ok = np.isfinite(h[:, 3])
        self.true_curve.setData(h[ok, 0], h[ok, 3])
        text = f"z {z_text(r.z_m)} · {r.method}"
        if r.z_true_m is not None:
            text += f" · true {z_text(r.z_true_m)} (error {(r.z_m - r.z_true_m) * 1e6:+.2f} µm)"
        self.z_label.setText(text)
        self._show_focus(r)
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
        r = self.last
        if r is not None and self.running and r.focus_in_range is False:
            note = r.focus_note.removeprefix("no focus in range: ")
            msgs.append(f"<b>No focus in range.</b> {note[:1].upper()}{note[1:]}")
        msgs += list(self.engine.plan.notes)
        self.banner.show_message("<br>".join(msgs), "error" if error or (rec is not None and rec.error)
                                 else "warning")

    def _show_focus(self, r: HoloResult) -> None:
        text, level = focus_text(r)
        colour = FOCUS_COLOURS.get(level)
        self.focus_label.setStyleSheet(f"QLabel {{ color: {colour}; font-weight: bold; }}" if colour else "")
        bg = BACKGROUND_TEXT.get(r.background, r.background)
        self.focus_label.setText(f"{text} · background: {bg}")
        self.focus_label.setToolTip((r.focus_note or text) + "\n\n" + self._focus_tip)
        if r.background != getattr(self, "_shown_background", None):
            self._shown_background = r.background
            self._show_background_in_use()
        if (r.focus_in_range is False) != getattr(self, "_shown_out", False):
            self._shown_out = r.focus_in_range is False
            self._update_banner()

    def tick(self) -> None:
        stages, px = "", ""
        if self.last is not None and self.stream is not None:
            t = self.last.timings_ms
            parts = [f"{k} {t[k]:.1f}" for k in ("focus", "reconstruct", "unwrap") if k in t]
            stages = f" ({', '.join(parts)})" if parts else ""
            px = " · " + pixel_text(self.last.pixel_size_m, self.engine.stream_optics)
        stats = self.stream_stats(stages)
        if stats != "stopped":
            stats = stats.replace(" · dropped", " · newest frame wins, dropped")
        self.stats_label.setText(stats + px)
        rec = self.engine.recorder
        if rec is not None and rec.running:
            blink = "●" if int(time.monotonic() * 2) % 2 == 0 else "○"
            self.rec_indicator.setText(f"{blink} REC {int(rec.elapsed_s) // 60:02d}:{int(rec.elapsed_s) % 60:02d}"
                                       f" · {rec.written} frames")
            disk = self._disk.text() if self._disk is not None else ""
            skipped = f" · {rec.dropped} frames not recorded (disk too slow)" if rec.dropped else ""
            self.record_label.setText(f"Recording to {rec.path.name} · {disk}{skipped}")
            self.record_label.setToolTip(str(rec.path))
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
        self._sync_locks()

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
        self._disk = DiskRate(rec.path)
        self.record_label.setText(f"Recording to {rec.path.name} · {self._disk.text()}")
        self.record_label.setToolTip(str(rec.path))
        self.sync_buttons()
        return True

    def stop_recording(self) -> None:
        rec = self.engine.stop_recording()
        self._disk = None
        if rec is not None:
            size = rec.path.stat().st_size if rec.path.is_file() else 0
            self.record_label.setText(f"{rec.path.name}: {rec.written} frames"
                                      + (f" — {rec.error}" if rec.error else f" saved ({human_bytes(size)})"))
            if rec.error:
                self._error = f"Recording stopped: {rec.error}"
        if hasattr(self, "record_button"):
            self.sync_buttons()
