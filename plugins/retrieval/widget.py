"""The retrieval widget: index folders (progress, cancel), query by file, drag-and-drop, paste or "find similar",
ranked thumbnail grid with scores, similarity threshold, folder filter, re-ID borders from folder labels, evaluation
of a labelled folder with its CMC curve, near-duplicate groups and CSV export (on app.gui.sdk; `start_demo()` indexes
and queries a synthetic set)."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt, QUrl
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
    QPainter,
    QPen,
    QPixmap,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.collection import Collection
from app.core.errors import VitascopeError
from app.core.jobs import ProgressEvent
from app.core.plugin_api import Host
from app.gui.sdk import (
    Job,
    JobControls,
    ModelPicker,
    PluginWidgetBase,
    ask_open_file,
    ask_save_file,
    button,
    hbox,
    spin_box,
)

from .embedders import BASELINES
from .engine import Hit, RetrievalEngine, duplicate_groups, evaluate, index_folders, read_rgb, search
from .layouts import read_layout
from .metrics import RankMetrics
from .widget_cmc import CmcPlot

log = logging.getLogger(__name__)
PLUGIN_ID = "retrieval"
THUMB = 112
_PID_RE = re.compile(r"^(-?\d+)_c\d")


def _pixmap(img: np.ndarray, size: int, border: QColor | None = None) -> QPixmap:
    h, w = img.shape[:2]
    qimg = QImage(np.ascontiguousarray(img).data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pm = QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation)
    if border is not None:
        p = QPainter(pm)
        p.setPen(QPen(border, 6))
        p.drawRect(pm.rect().adjusted(3, 3, -3, -3))
        p.end()
    return pm


class QueryLabel(QLabel):
    """The query image; accepts dropped image files."""

    def __init__(self, on_file) -> None:
        super().__init__("Drop an image here,\npaste (Ctrl+V) or\nchoose a file")
        self.on_file = on_file
        self.setAcceptDrops(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(180, 180)
        self.setStyleSheet("QLabel { border: 2px dashed palette(mid); }")

    def dragEnterEvent(self, e) -> None:  # noqa: N802 (Qt override)
        if e.mimeData().hasUrls():
            e.acceptProposedAction()

    def dropEvent(self, e) -> None:  # noqa: N802 (Qt override)
        urls = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.on_file(urls[0])


class RetrievalWidget(PluginWidgetBase):
    plugin_id = PLUGIN_ID

    def __init__(self, host: Host, engine: RetrievalEngine, parent: QWidget | None = None) -> None:
        super().__init__(host, engine, parent)
        self.db = Path(host.data_dir(PLUGIN_ID)) / "collection.vdb"
        self.folders: list[str] = [str(f) for f in host.settings(PLUGIN_ID).get("folders", [])]
        self.query_img: np.ndarray | None = None
        self.query_name = ""
        self.hits: list[Hit] = []
        self.evaluation: RankMetrics | None = None
        self._build()
        self.engine.set_model(self.model_box.currentData() or None)
        self._refresh_folders()

    # layout ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        top = QHBoxLayout()
        self.model_box = ModelPicker(self.host, plugin_id=PLUGIN_ID, items=lambda: [
            (m, m) for m in self.engine.available_models() + list(BASELINES)])
        self.model_box.setToolTip("Embedding model (installed retrieval models, then classical baselines)")
        self.model_box.chosen.connect(self._model_changed)
        self.model_box.refreshed.connect(lambda mid: self.engine.set_model(mid or None))
        self.add_btn = QPushButton("Add folder…")
        self.add_btn.clicked.connect(self._add_folder)
        self.index_btn = QPushButton("Index")
        self.index_btn.clicked.connect(self.start_index)
        self.controls = JobControls(tip="Stop indexing; what is embedded so far is kept", always_visible=True)
        self.controls.cancel_button.clicked.connect(self._cancelling)
        self.status = QLabel("")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # a row of its own:
        self.status.setWordWrap(True)  # long text wraps instead of widening the tab
        for w in (QLabel("Model:"), self.model_box, self.add_btn, self.index_btn, self.controls):
            top.addWidget(w)
        top.addStretch(1)

        left = QVBoxLayout()
        self.folder_list = QListWidget()
        self.folder_list.setMaximumHeight(110)
        left.addWidget(QLabel("Indexed folders"))
        left.addWidget(self.folder_list)
        self.query_label = QueryLabel(self.query_file)
        left.addWidget(self.query_label)
        self.query_caption = QLabel("")
        self.query_caption.setWordWrap(True)
        left.addWidget(self.query_caption)
        self.file_btn = button("Query file…", self._choose_query)
        self.paste_btn = button("Paste", self.paste)
        left.addLayout(hbox(self.file_btn, self.paste_btn))
        self.k_spin = spin_box(1, 500, 24, prefix="top ")
        self.thr = spin_box(-1.0, 1.0, 0.0, decimals=3, step=0.05, prefix="score ≥ ")
        self.thr.valueChanged.connect(self._show_hits)
        self.k_spin.valueChanged.connect(self.rerun)
        self.folder_filter = QComboBox()
        self.folder_filter.currentTextChanged.connect(self.rerun)
        self.reid = QCheckBox("Re-ID borders (label: pid or folder)")
        self.reid.toggled.connect(self._show_hits)
        for w in (self.k_spin, self.thr, QLabel("Folder filter:"), self.folder_filter, self.reid):
            left.addWidget(w)
        self.dup_btn = button("Near-duplicates", self.show_duplicates)
        self.csv_btn = button("Export CSV…", self._export_csv)
        left.addLayout(hbox(self.dup_btn, self.csv_btn))
        self.eval_btn = button("Evaluate labelled folder…", self._choose_eval,
                               "mAP and CMC of the current model on a labelled folder (sub-folder = class or "
                               "identity; Market-1501 and CUB layouts are detected)")
        left.addWidget(self.eval_btn)
        left.addStretch(1)
        left_w = QWidget()
        left_w.setLayout(left)
        left_scroll = QScrollArea()  # the controls scroll on short screens; results and CMC plot keep their room
        left_scroll.setWidget(left_w)
        left_scroll.setWidgetResizable(True)
        left_scroll.setFrameShape(QFrame.Shape.NoFrame)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMaximumWidth(300)
        left_scroll.setMinimumWidth(left_w.sizeHint().width() + left_scroll.verticalScrollBar().sizeHint().width())

        self.grid = QListWidget()
        self.grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setGridSize(QSize(THUMB + 24, THUMB + 44))
        self.grid.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.grid.setMovement(QListWidget.Movement.Static)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setWordWrap(True)
        self.grid.itemDoubleClicked.connect(lambda it: self.query_file(it.data(Qt.ItemDataRole.UserRole)))
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._menu)

        self.cmc = CmcPlot()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.grid)
        right.addWidget(self.cmc)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 1)
        right.setSizes([420, 180])
        split = QSplitter()
        split.addWidget(left_scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.status)
        lay.addWidget(split, 1)
        QShortcut(QKeySequence.StandardKey.Paste, self, activated=self.paste)

    # models and folders ------------------------------------------------------------------------------------
    def _model_changed(self, name: str | None) -> None:
        self.engine.set_model(name or None)
        self.status.setText("Model changed: press Index to embed the folders with it.")

    def _refresh_folders(self) -> None:
        self.folder_list.clear()
        self.folder_list.addItems(self.folders)
        self.folder_filter.blockSignals(True)
        self.folder_filter.clear()
        self.folder_filter.addItems(["(all folders)"] + self.folders)
        self.folder_filter.blockSignals(False)

    def _add_folder(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Folder of images to index")
        if d:
            self.add_folder(d)

    def add_folder(self, folder: str) -> None:
        if folder not in self.folders:
            self.folders.append(folder)
            self.host.save_settings(PLUGIN_ID, {**self.host.settings(PLUGIN_ID), "folders": self.folders})
            self._refresh_folders()

    # indexing ----------------------------------------------------------------------------------------------
    def start_index(self) -> None:
        if not self.folders or self.job_running("index"):
            if not self.folders:
                self.status.setText("Add a folder first.")
            return
        try:
            embedder = self.engine.embedder()
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        folders, db = list(self.folders), self.db

        def work(token, emit):
            def progress(stage: str, done: int, total: int) -> None:
                emit(ProgressEvent("progress", step=done, total=total, message=stage))
            return index_folders(folders, db, embedder, progress=progress, cancelled=lambda: token.cancelled)

        self.index_btn.setEnabled(False)
        self.status.setText("Indexing…")
        self.run_job("index images", work, self._indexed, on_error=self._index_failed, key="index",
                     controls=self.controls)

    def cancel_index(self) -> None:
        self.controls.cancel()
        self._cancelling()

    def _cancelling(self) -> None:
        if self.job_running("index"):
            self.status.setText("Cancelling… (what is embedded so far is kept)")

    def job_ended(self, job: Job) -> None:
        if job.key == "evaluate":
            self.eval_btn.setEnabled(True)
            return
        self.index_btn.setEnabled(True)
        if job.outcome == "cancelled":
            self.status.setText("Indexing cancelled; press Index to continue where it stopped.")

    def _indexed(self, rep: Any) -> None:
        text = rep.summary()
        if rep.unreadable:
            text += f" — unreadable: {', '.join(Path(p).name for p, _ in rep.unreadable[:5])}"
            text += "…" if len(rep.unreadable) > 5 else ""
        self.status.setText(text)
        self.status.setToolTip("\n".join(f"{p}: {r}" for p, r in rep.unreadable))
        self.rerun()

    def _index_failed(self, msg: str) -> None:
        self.status.setText(msg if "ancel" not in msg else "Indexing cancelled; press Index to resume.")

    # evaluation --------------------------------------------------------------------------------------------
    def _choose_eval(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Labelled folder to evaluate (sub-folder = class or identity)")
        if d:
            self.evaluate_folder(d)

    def evaluate_folder(self, root: str | Path, layout: str | None = None) -> None:
        """Score the current model on a labelled layout (engine.evaluate) and plot its CMC curve."""
        if self.job_running("evaluate"):
            return
        try:
            embedder = self.engine.embedder()
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        root = Path(root)

        def work(token, emit):
            es = read_layout(root, layout)

            def progress(done: int, total: int) -> None:
                if token.cancelled:
                    raise VitascopeError("evaluation cancelled")
                emit(ProgressEvent("progress", step=done, total=total, message="evaluate"))
            return evaluate(es, embedder, progress=progress), es.layout

        self.eval_btn.setEnabled(False)
        self.status.setText(f"Evaluating {embedder.model_id} on {root.name}…")
        self.run_job("evaluate retrieval", work, lambda r: self._evaluated(r[0], r[1], root, embedder.model_id),
                     on_error=lambda msg: self.status.setText(f"Evaluation failed: {msg}"), key="evaluate")

    def _evaluated(self, m: RankMetrics, layout: str, root: Path, model: str) -> None:
        self.evaluation = m
        self.cmc.set_result(m.curve, m.map, f"{model} on {root.name} ({layout}, {m.queries} queries)")
        self.status.setText(f"{model} on {root.name}: mAP {m.map:.3f} · rank-1 {m.cmc['1']:.3f} · rank-5 "
                            f"{m.cmc['5']:.3f} · Recall@8 {m.recall['8']:.3f} · mINP {m.minp:.3f} "
                            f"({m.queries} queries, {m.gallery} gallery)")

    # querying ----------------------------------------------------------------------------------------------
    def _choose_query(self) -> None:
        f = ask_open_file(self, "Query image")
        if f:
            self.query_file(f)

    def query_file(self, path: str) -> None:
        try:
            img = read_rgb(path)
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        self.query_image(img, str(path))

    def paste(self) -> None:
        cb = QGuiApplication.clipboard()
        md = cb.mimeData()
        if md is not None and md.hasUrls() and md.urls()[0].isLocalFile():
            self.query_file(md.urls()[0].toLocalFile())
            return
        qimg = cb.image()
        if qimg.isNull():
            self.status.setText("The clipboard holds no image.")
            return
        qimg = qimg.convertToFormat(QImage.Format.Format_RGB888)
        w, h, bpl = qimg.width(), qimg.height(), qimg.bytesPerLine()
        arr = np.frombuffer(qimg.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)[:, :3 * w]
        self.query_image(arr.reshape(h, w, 3).copy(), "(pasted image)")

    def query_image(self, img: np.ndarray, name: str) -> None:
        self.query_img, self.query_name = img, name
        self.query_label.setPixmap(_pixmap(img, 176))
        self.query_caption.setText(Path(name).name if name.startswith("/") else name)
        self.rerun()

    def rerun(self) -> None:
        if self.query_img is None or not self.db.is_file():
            return
        folder = self.folder_filter.currentText()
        try:
            self.hits = search(self.db, self.query_img, self.engine.embedder(), k=self.k_spin.value(),
                               folder=None if folder.startswith("(") or not folder else folder)
        except VitascopeError as e:
            self.status.setText(str(e))
            self.hits = []
        self._show_hits()

    def _label(self, path: str) -> str:
        """Identity for the re-ID borders: the Market-1501 pid of the file name, else the folder name."""
        m = _PID_RE.match(Path(path).name)
        return m.group(1) if m else Path(path).parent.name

    def _show_hits(self) -> None:
        self.grid.clear()
        thr = self.thr.value()
        shown = [h for h in self.hits if h.score >= thr]
        q_label = self._label(self.query_name) if self.query_name.startswith("/") else None
        with Collection(self.db, readonly=True) as col:
            for h in shown:
                border = None
                if self.reid.isChecked() and q_label is not None:
                    border = QColor("#2e9d3a") if self._label(h.file) == q_label else QColor("#d23b2f")
                thumb = col.thumbnail(h.id, 128) if h.id >= 0 else None
                try:
                    img = read_rgb(thumb or h.file)
                except VitascopeError:
                    continue
                item = QListWidgetItem(QIcon(_pixmap(img, THUMB, border)), f"{h.score:.3f}\n{Path(h.file).name}")
                item.setData(Qt.ItemDataRole.UserRole, h.file)
                item.setToolTip(f"{h.file}\ncosine similarity {h.score:.4f}")
                self.grid.addItem(item)
        hidden = len(self.hits) - len(shown)
        self.status.setText(f"{len(shown)} results" + (f" ({hidden} below the threshold hidden)" if hidden else "")
                            + f" — model {self.engine.embedder().model_id}")

    def _menu(self, pos) -> None:
        item = self.grid.itemAt(pos)
        if item is None:
            return
        path = item.data(Qt.ItemDataRole.UserRole)
        m = QMenu(self)
        m.addAction("Find similar", lambda: self.query_file(path))
        m.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(path))
        m.addAction("Open", lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(path)))
        m.exec(self.grid.mapToGlobal(pos))

    def export_csv(self, path: str | Path) -> int:
        rows = [h for h in self.hits if h.score >= self.thr.value()]
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["rank", "file", "score", "query", "model"])
            for i, h in enumerate(rows, 1):
                w.writerow([i, h.file, f"{h.score:.6f}", self.query_name, self.engine.embedder().model_id])
        return len(rows)

    def _export_csv(self) -> None:
        f = ask_save_file(self, "Export ranked list", "results.csv", "CSV (*.csv)")
        if f:
            n = self.export_csv(f)
            self.status.setText(f"{n} rows written to {f}")

    def show_duplicates(self) -> None:
        """Groups of indexed images with similarity ≥ the threshold, shown one group after another."""
        from app.core.vector_index import load_index

        if not self.db.is_file():
            return
        try:
            index = load_index(self.db)
        except VitascopeError as e:
            self.status.setText(str(e))
            return
        if not hasattr(index, "vectors"):
            self.status.setText("Near-duplicate groups need the exact index (collections up to its size limit).")
            return
        thr = max(self.thr.value(), 0.5)
        groups = duplicate_groups(index.vectors(), thr)
        ids = index.ids()
        with Collection(self.db, readonly=True) as col:
            self.hits = [Hit(p, float(gi), int(ids[j])) for gi, g in enumerate(groups[:50])
                         for j, p in zip(g, col.paths(ids[g].tolist()), strict=True)]
        self.grid.clear()
        with Collection(self.db, readonly=True) as col:
            for h in self.hits:
                thumb = col.thumbnail(h.id, 128)
                if thumb is None:
                    continue
                item = QListWidgetItem(QIcon(_pixmap(read_rgb(thumb), THUMB)),
                                       f"group {int(h.score) + 1}\n{Path(h.file).name}")
                item.setData(Qt.ItemDataRole.UserRole, h.file)
                self.grid.addItem(item)
        self.status.setText(f"{len(groups)} near-duplicate groups at similarity ≥ {thr:.2f}")

    # app conventions ---------------------------------------------------------------------------------------
    def start_demo(self) -> None:
        """Smoke mode: a small synthetic re-ID set is written, indexed and queried."""
        from .synthetic import write_market_layout

        root = Path(self.host.data_dir(PLUGIN_ID)) / "demo-reid"
        if not (root / "query").is_dir():
            write_market_layout(root, n_ids=16, seed=4242, views=5)
        self.add_folder(str(root / "bounding_box_test"))
        embedder = self.engine.embedder()
        index_folders([root / "bounding_box_test"], self.db, embedder)
        self.reid.setChecked(True)
        self.query_file(str(sorted((root / "query").iterdir())[0]))

