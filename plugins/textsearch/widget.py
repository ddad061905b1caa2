"""Text-search page: pick a CLIP model, index folders (progress, cancel), type a query (text, image paths, weights,
'+' / '-' terms), see the ranked images as a thumbnail grid with their scores and a threshold (on app.gui.sdk)."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import VitascopeError
from app.core.jobs import ProgressEvent
from app.core.plugin_api import Host
from app.gui.sdk import Job, JobControls, ModelPicker, PluginWidgetBase, ask_open_file, ask_save_file, spin_box

from .clipcard import read_card as read_clip_card
from .engine import TextSearchEngine

PLUGIN_ID = "textsearch"
THUMB = 128


class TextSearchWidget(PluginWidgetBase):
    plugin_id = PLUGIN_ID

    def __init__(self, host: Host, engine: TextSearchEngine, parent: QWidget | None = None) -> None:
        super().__init__(host, engine, parent)
        self.model_box = ModelPicker(host, items=self._clip_models, none_text="no CLIP model installed")
        self.model_box.setToolTip("CLIP model used to index and search (one index per model)")
        self.index_btn = QPushButton("Index folder…")
        self.controls = JobControls(tip="Stop indexing; what is embedded so far is kept")
        top = QHBoxLayout()
        top.addWidget(QLabel("Model:"))
        top.addWidget(self.model_box, 1)
        top.addWidget(self.index_btn)
        top.addWidget(self.controls, 1)

        self.query = QLineEdit()
        self.query.setPlaceholderText('a dog on a beach   ·   "2:red car" + photo.jpg - night')
        self.threshold = spin_box(-1.0, 1.0, -1.0, decimals=3, step=0.005, prefix="min score ")
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
        self.search_btn.clicked.connect(self.run_search)
        self.query.returnPressed.connect(self.run_search)
        self.model_box.chosen.connect(self._model_changed)
        self.image_btn.clicked.connect(self._add_image)
        self.results.itemDoubleClicked.connect(self._open)
        self.copy_btn.clicked.connect(self.copy_paths)
        self.export_btn.clicked.connect(self._export)

    def _clip_models(self) -> list[tuple[str, str]]:
        """(card id, folder) of the installed CLIP models whose card reads."""
        items = []
        for folder in self.engine.available_models():
            try:
                items.append((read_clip_card(folder).id, str(folder)))
            except VitascopeError:
                continue
        return items

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
        if roots and not self.job_running("index"):
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
        self.index_btn.setEnabled(False)
        engine = self.engine

        def run(token, emit):
            return engine.index(folders, token, lambda stage, d, t: emit(ProgressEvent(
                "progress", step=d, total=t, message=f"{stage} {d}/{t}")))

        self.run_job("Index images for text search", run, self._indexed, on_error=self.status.setText,
                     on_event=self._event, key="index", controls=self.controls)

    def _event(self, ev: ProgressEvent) -> None:
        if ev.message:
            self.status.setText(ev.message)

    def job_ended(self, job: Job) -> None:
        self.index_btn.setEnabled(True)
        if job.outcome == "cancelled":
            self.status.setText("Indexing cancelled; index the folder again to continue where it stopped.")

    def _indexed(self, rep) -> None:
        self.status.setText(f"{rep.files} images indexed with {rep.model} ({rep.scan}; {rep.embedded} embedded)")

    def run_search(self) -> None:
        thr = self.threshold.value()
        try:
            results = self.engine.search(self.query.text(), k=48, threshold=None if thr <= -1.0 else thr)
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        self.show_results(results)

    def _add_image(self) -> None:
        f = ask_open_file(self, "Example image")
        if f:
            text = self.query.text().strip()
            self.query.setText(f"{text} + {f}" if text else f)

    def _open(self, item: QListWidgetItem) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(item.toolTip()))

    def copy_paths(self) -> None:
        QGuiApplication.clipboard().setText("\n".join(r["file"] for r in self._last))

    def _export(self) -> None:
        f = ask_save_file(self, "Export results", "results.csv", "CSV (*.csv)")
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

    def on_shutdown(self) -> None:
        self.engine.close()
