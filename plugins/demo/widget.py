"""The demo plug-in's widget: live view of generated shapes with the predicted label, probability bars,
fps / latency / dropped-frame counters, a model picker and "Classify file…" (built on app.gui.sdk)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import ModelError
from app.core.frames import Frame
from app.core.io.images import read_image
from app.core.plugin_api import Host
from app.gui.sdk import (
    Banner,
    Job,
    ModelPicker,
    PluginWidgetBase,
    ProbabilityBars,
    ask_open_file,
    style_plot_axes,
)

from .engine import TASK, Classification, DemoEngine

log = logging.getLogger(__name__)
PLUGIN_ID = "demo"
NO_MODEL = ("No demo model is installed, so frames are shown but not classified. Train it "
            "(<code>vitascope train</code> with the demo recipe) or install a model folder from "
            "<b>Model zoo → Install…</b>; classification starts as soon as it appears.")


@dataclass
class Unclassified:
    """A live frame that could not be classified because no model is available."""

    image: np.ndarray
    index: int
    reason: str


class DemoWidget(PluginWidgetBase):
    plugin_id = PLUGIN_ID

    def __init__(self, host: Host, engine: DemoEngine, parent: QWidget | None = None) -> None:
        super().__init__(host, engine, parent)
        self.results = 0
        self._build()
        self.model_combo.refreshed.connect(self._models_refreshed)
        self.model_combo.chosen.connect(self._use_model)
        self._models_refreshed(self.model_combo.currentData())
        self.sync_buttons()

    # layout ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(None)  # letterbox in the window colour, not black
        self.view.setMinimumSize(320, 320)
        self.viewbox = self.view.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image_item)
        self.image_item.setImage(np.zeros((64, 64, 3), np.uint8), autoLevels=False, levels=(0, 255))
        self.viewbox.autoRange(padding=0)
        self.source_label = QLabel("Live: generated shapes (demo source)")
        self.stats_label = QLabel("stopped")
        self.stats_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left = QVBoxLayout()
        left.addWidget(self.source_label)
        left.addWidget(self.view, 1)
        left.addWidget(self.stats_label)

        self.label = QLabel("—")
        font = self.label.font()
        font.setPointSizeF(font.pointSizeF() * 2.0)
        font.setBold(True)
        self.label.setFont(font)
        self.label_detail = QLabel("Press Start to classify the live demo stream.")
        self.label_detail.setWordWrap(True)
        self.bars = ProbabilityBars()
        self.history = pg.PlotWidget()
        self.history.setBackground(None)
        self.history.setMinimumHeight(120)
        self.history.setYRange(0, 1, padding=0.02)
        self.history.setXRange(-99, 0, padding=0.02)
        self.history.setMouseEnabled(x=False, y=False)
        self.history.hideButtons()
        self.history.setLabel("left", "confidence")
        self.history.setLabel("bottom", "frames ago")
        self.palette_changed()
        self._history: list[tuple[float, int]] = []  # (confidence, class index) of recent live frames
        self._brushes: list[QBrush] = []
        self._curve = self.history.plot([], [], pen=pg.mkPen((128, 128, 128), width=1), symbol="o",
                                        symbolSize=7, symbolPen=None)
        self.message = Banner()
        pred = QGroupBox("Prediction")
        pv = QVBoxLayout(pred)
        pv.addWidget(self.label)
        pv.addWidget(self.label_detail)
        pv.addWidget(self.bars)
        caption = QLabel("Confidence of the predicted class over the last 100 frames (dot colour = class)")
        caption.setWordWrap(True)
        pv.addWidget(caption)
        pv.addWidget(self.history, 1)

        self.model_combo = ModelPicker(self.host, TASK, plugin_id=PLUGIN_ID,
                                       items=lambda: [(m, m) for m in self.engine.available_models()])
        self.model_combo.setSizeAdjustPolicy(ModelPicker.SizeAdjustPolicy.AdjustToContents)
        self.live_buttons()
        self.file_button = QPushButton("Classify file…")
        self.file_button.clicked.connect(self._classify_clicked)
        self.file_label = QLabel("")
        self.file_label.setWordWrap(True)
        controls = QGroupBox("Controls")
        form = QFormLayout(controls)
        form.addRow("Model", self.model_combo)
        row = QHBoxLayout()
        for b in (self.start_button, self.stop_button):
            row.addWidget(b)
        form.addRow(row)
        form.addRow(self.file_button)  # on its own row: at 1024x700 three buttons in a row cut its text
        form.addRow(self.file_label)

        right = QVBoxLayout()
        right.addWidget(self.message)
        right.addWidget(pred, 1)
        right.addWidget(controls)
        right_w = QWidget()
        right_w.setLayout(right)
        right_w.setMinimumWidth(280)
        right_w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addWidget(right_w, 2)

    def palette_changed(self) -> None:
        style_plot_axes(self.history, self.text_colour())

    def _set_labels(self, labels: tuple[str, ...]) -> None:
        if labels == self.bars.labels:
            return
        self.bars.set_labels(labels)
        self._history, self._brushes = [], [pg.mkBrush(self.bars.colour(lab)) for lab in labels]
        self._curve.setData([], [])

    # models ------------------------------------------------------------------------------------------------
    def _models_refreshed(self, model_id: str | None) -> None:
        """After the picker was filled (again when the zoo changes): use its model, or say none is installed."""
        self._use_model(model_id)
        self.message.show_message(None if self.model_combo.model_ids() else NO_MODEL)

    def _use_model(self, model_id: str | None) -> None:
        self.engine.select_model(model_id)
        if model_id:
            labels = next((tuple(c.labels) for c in self.host.models(TASK) if c.id == model_id), ())
            self._set_labels(labels)

    # live stream -------------------------------------------------------------------------------------------
    def _process(self, frame: Frame) -> Any:
        """On the stream's worker thread: classify, or pass the frame through when no model is there yet."""
        try:
            return self.engine.process(frame)
        except ModelError as e:
            if self.engine.available_models():
                raise  # a broken model is an error, not "not installed yet"
            return Unclassified(frame.data, frame.index, str(e))

    def start(self) -> None:
        if self.stream is not None and self.stream.running:
            return
        try:
            source = self.engine.demo_source()
        except Exception as e:  # a plug-in's missing data must show, not crash
            log.exception("demo source failed")
            self.message.show_message(f"The demo source could not start: {e.__class__.__name__}: {e}")
            return
        if source is None:
            self.message.show_message("This engine has no demo source.")
            return
        self.results = 0
        self.start_stream(source, self._process, self._on_result)
        self.label_detail.setText("Waiting for the first frame…")
        self.sync_buttons()

    def _on_result(self, result: Any) -> None:
        self.results += 1
        self.show_result(result)

    def show_result(self, result: Classification | Unclassified) -> None:
        if result.image is not None:
            self.image_item.setImage(result.image, autoLevels=False, levels=(0, 255))
        if isinstance(result, Unclassified):
            self.label.setText("(not classified)")
            self.label_detail.setText(f"frame {result.index}: no model installed")
            self.message.show_message(NO_MODEL)
            return
        self.message.show_message(None)
        self._set_labels(tuple(result.probabilities))
        p = result.probabilities.get(result.label, 0.0)
        self.label.setText(result.label)
        where = f"frame {result.index}" if result.index >= 0 else "file"
        self.label_detail.setText(f"{p:.1%} confidence · {where} · {result.model} · {result.ms:.1f} ms")
        self.bars.set_probabilities(result.probabilities)
        if result.index >= 0 and result.label in self.bars.labels:  # live frames only
            self._history = (self._history + [(p, self.bars.labels.index(result.label))])[-100:]
            x = np.arange(-len(self._history) + 1, 1)
            y = np.array([c for c, _ in self._history])
            self._curve.setData(x, y, symbolBrush=[self._brushes[k] for _, k in self._history])

    def tick(self) -> None:
        self.stats_label.setText(self.stream_stats())
        if self.stream is not None and self.stream.stats.error:
            self.message.show_message(f"<b>The stream stopped:</b> {self.stream.stats.error}")

    # files -------------------------------------------------------------------------------------------------
    def _classify_clicked(self) -> None:
        path = ask_open_file(self, "Classify an image")
        if path:
            self.classify_file(Path(path))

    def classify_file(self, path: Path) -> Job:
        """Classify one image file on a job; the result shows here and in the jobs panel."""
        path = Path(path)
        self.file_label.setText(f"Classifying {path.name}…")

        def done(r: Classification) -> None:
            self.file_label.setText(f"{path.name} → {r.label} ({r.probabilities.get(r.label, 0):.1%})")
            if not self.running:
                self.show_result(r)

        def failed(msg: str) -> None:
            self.file_label.setText(f"{path.name}: {msg}")

        return self.run_job(f"classify {path.name}", lambda tok, emit: self.engine.classify(read_image(path)),
                            on_result=done, on_error=failed)
