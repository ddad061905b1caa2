"""Text-search page: pick a CLIP model, index folders (progress, cancel), type a query (text, image paths, weights,
'+' / '-' terms), see the ranked images as a thumbnail grid with their scores and a threshold."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import VitascopeError

from .clipcard import read_card as read_clip_card
from .engine import TextSearchEngine

THUMB = 128


class TextSearchWidget(QWidget):
    def __init__(self, host: Any, engine: TextSearchEngine) -> None:
        super().__init__()
        self.host, self.engine = host, engine
        self._job = None
        self.model_box = QComboBox()
        self.model_box.setToolTip("CLIP model used to index and search (one index per model)")
        for folder in engine.available_models():
            try:
                self.model_box.addItem(read_clip_card(folder).id, str(folder))
            except VitascopeError:
                continue
        if not self.model_box.count():
            self.model_box.addItem("no CLIP model installed", "")
        self.index_btn = QPushButton("Index folder…")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.model_box, 1)
        top.addWidget(self.index_btn)
        top.addWidget(self.cancel_btn)
        top.addWidget(self.progress, 1)

        self.query = QLineEdit()
        self.query.setPlaceholderText('a dog on a beach   ·   "2:red car" + photo.jpg - night')
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(-1.0, 1.0)
        self.threshold.setSingleStep(0.005)
        self.threshold.setDecimals(3)
        self.threshold.setValue(-1.0)
        self.threshold.setPrefix("min score ")
        self.threshold.setToolTip("hide results whose cosine score is below this")
        self.search_btn = QPushButton("Search")
        self.image_btn = QPushButton("Add image…")
        self.image_btn.setToolTip("add an example image to the query (+ image); edit the line to weight or negate it")
        row = QHBoxLayout()
        row.addWidget(self.query, 1)
        row.addWidget(self.image_btn)
        row.addWidget(self.threshold)
        row.addWidget(self.search_btn)
        self.copy_btn = QPushButton("Copy paths")
        self.export_btn = QPushButton("Export CSV…")
        actions = QHBoxLayout()
        actions.addWidget(QLabel("Double-click a result to open it."))
        actions.addStretch(1)
        actions.addWidget(self.copy_btn)
        actions.addWidget(self.export_btn)

        self.results = QListWidget()
        self.results.setViewMode(QListWidget.ViewMode.IconMode)
        self.results.setIconSize(QSize(THUMB, THUMB))
        self.results.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.results.setGridSize(QSize(THUMB + 24, THUMB + 40))
        self.results.setWordWrap(True)
        self.status = QLabel("Index a folder, then type what you are looking for.")
        self.status.setWordWrap(True)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(row)
        lay.addWidget(self.results, 1)
        lay.addLayout(actions)
        lay.addWidget(self.status)
        self._last: list[dict] = []

        self.index_btn.clicked.connect(self._choose_folder)
        self.cancel_btn.clicked.connect(self._cancel)
        self.search_btn.clicked.connect(self.run_search)
        self.query.returnPressed.connect(self.run_search)
        self.model_box.currentIndexChanged.connect(self._model_changed)
        self.image_btn.clicked.connect(self._add_image)
        self.results.itemDoubleClicked.connect(self._open)
        self.copy_btn.clicked.connect(self.copy_paths)
        self.export_btn.clicked.connect(self._export)

    # actions --------------------------------------------------------------------------------------------------
    def _model_changed(self) -> None:
        """One index per model: switching re-embeds the indexed folders with the new model in the background."""
        folder = self.model_box.currentData()
        if not folder:
            return
        try:
            self.engine.model(folder)
            roots = self.engine.indexed_roots()
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        if roots and self._job is None:
            self.start_index(roots)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to index")
        if folder:
            self.start_index([folder])

    def start_index(self, folders: list[str]) -> None:
        try:
            self.engine.model(self.model_box.currentData() or None)
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.cancel_btn.setEnabled(True)
        self.index_btn.setEnabled(False)
        self._job = self.engine.index_job(folders, on_result=self._indexed, on_event=self._event,
                                          on_error=self._failed)

    def _event(self, ev) -> None:
        if ev.total:
            self.progress.setRange(0, int(ev.total))
            self.progress.setValue(int(ev.step or 0))
        if ev.message:
            self.status.setText(ev.message)

    def _done(self) -> None:
        self.progress.setVisible(False)
        self.cancel_btn.setEnabled(False)
        self.index_btn.setEnabled(True)
        self._job = None

    def _indexed(self, rep) -> None:
        self._done()
        self.status.setText(f"{rep.files} images indexed with {rep.model} ({rep.scan}; {rep.embedded} embedded)")

    def _failed(self, message: str) -> None:
        self._done()
        self.status.setText(message)

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def run_search(self) -> None:
        thr = self.threshold.value()
        try:
            results = self.engine.search(self.query.text(), k=48, threshold=None if thr <= -1.0 else thr)
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        self.show_results(results)

    def _add_image(self) -> None:
        f, _ = QFileDialog.getOpenFileName(self, "Example image", "", "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff)")
        if f:
            text = self.query.text().strip()
            self.query.setText(f"{text} + {f}" if text else f)

    def _open(self, item: QListWidgetItem) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(item.toolTip()))

    def copy_paths(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(r["file"] for r in self._last))

    def _export(self) -> None:
        f, _ = QFileDialog.getSaveFileName(self, "Export results", "results.csv", "CSV (*.csv)")
        if f:
            self.export_csv(f)

    def export_csv(self, path: str) -> None:
        try:
            with open(path, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["rank", "file", "score", "query"])
                for i, r in enumerate(self._last, 1):
                    w.writerow([i, r["file"], f"{r['score']:.6f}", self.query.text()])
        except OSError as e:
            self.status.setText(f"{path}: cannot write ({e.strerror or e})")

    def show_results(self, results: list[dict]) -> None:
        self._last = list(results)
        self.results.clear()
        for r in results:
            item = QListWidgetItem(f"{r['score']:.3f}  {Path(r['file']).name}")
            img = QImage(r["file"])
            if not img.isNull():
                item.setIcon(QIcon(QPixmap.fromImage(img.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                                 Qt.TransformationMode.SmoothTransformation))))
            item.setToolTip(r["file"])
            self.results.addItem(item)
        query = "".join((" − " if t.weight < 0 else (" + " if i else "")) + t.__class__(t.kind, t.value,
                                                                                       abs(t.weight)).label()
                        for i, t in enumerate(self.engine.last_terms))
        self.status.setText(f"{len(results)} results for {query}" + (f"; best score {results[0]['score']:.3f}"
                                                                      if results else ""))

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self._job.wait(5.0)
        self.engine.close()
