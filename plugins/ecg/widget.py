"""The ECG review screen: a worklist (sort, filter, search), the zoomable ECG with an attention overlay, the model's
read beside the measurement-based second opinion, and a review panel whose confirm / override / uncertain decisions
(Ctrl+Enter / Ctrl+O / Ctrl+U) go to the worklist's audit log. Built on app.gui.sdk: reading, screening and every
export run as host jobs, never on the Qt thread, and their callbacks come back on it."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QKeySequence, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import VitascopeError
from app.core.jobs import CancelToken, ProgressEvent
from app.core.plugin_api import Host
from app.gui.sdk import Banner, Job, JobControls, PluginWidgetBase

from .report import NOTICE, export_csv, write_pdf_report
from .review import Item, Worklist, WorklistCorrupt
from .types import CLASS_TITLES, CLASSES, EcgInput
from .widget_preview import EcgPreview
from .widget_result import ResultPanel, ResultScroll
from .widget_worklist import COLUMNS, DECISION_TEXT, WorklistModel, WorklistTable

__all__ = ["COLUMNS", "EcgWidget", "WorklistModel"]

log = logging.getLogger(__name__)
PLUGIN_ID = "ecg"
NO_MODEL = ("<b>No ECG model is installed.</b> You can open, view and review ECGs, but <i>Screen all</i> is off "
            "until a model is installed (<b>Model zoo → Install…</b>).")
IMAGE_CACHE = 6  # decoded ECG images kept in memory (~10 MB each at 2213×1572)
OVERRIDE_TITLES = {"myocardial_infarction": "Acute MI"}
SHORTCUTS = {"confirm": ("Ctrl+Return", "Ctrl+Enter"), "override": ("Ctrl+O",), "uncertain": ("Ctrl+U",)}
NO_DICOM_TIP = "Select a DICOM ECG first: de-identified export is for DICOM files only"


def _prewarm_imports() -> None:
    """Import on the GUI thread what ECG jobs would otherwise import lazily on their threads. PySide6 replaces
    __import__ with its feature hook (shibokensupport), and first imports on a worker thread while the GUI thread
    runs have deadlocked and corrupted memory (a crash later, while garbage-collecting) in our test runs."""
    import io

    import cv2  # noqa: F401
    import pydicom
    import pydicom.filereader  # noqa: F401
    import pydicom.values  # noqa: F401
    import scipy.signal  # noqa: F401
    import wfdb  # noqa: F401  (pulls pandas)
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    from .deid import deidentify_dicom  # noqa: F401  (the plug-in's modules by name, not through the package)
    from .measure import detect_r_peaks  # noqa: F401
    from .readers import lead_name  # noqa: F401
    from .render import px_per_mm  # noqa: F401

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.9.1.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientName, ds.StudyDate = "Warm^Up", "20000101"
    item = Dataset()
    item.CodeValue = "0"
    ds.ConceptNameCodeSequence = Sequence([item])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    buf.seek(0)
    pydicom.dcmread(buf)  # runs the reader's in-function imports once, here


class _ThreadSide:
    """What job threads use: the engine and a small image cache. A plain Python object on purpose: job threads
    never touch the widget (attribute access on a Qt wrapper from another thread is not safe)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, source: str) -> np.ndarray | None:
        with self._lock:
            img = self._images.get(source)
            if img is not None:
                self._images.move_to_end(source)
            return img

    def cache(self, source: str, image: np.ndarray) -> None:
        with self._lock:
            self._images[source] = image
            self._images.move_to_end(source)
            while len(self._images) > IMAGE_CACHE:
                self._images.popitem(last=False)

    def read_and_cache(self, path: Path) -> list[EcgInput]:
        inputs = self.engine.read(path)
        for inp in inputs[:IMAGE_CACHE]:
            self.cache(inp.source, inp.image)
        return inputs

    def read_input(self, it: Item) -> EcgInput:
        """Read the item's file and pick its group/record."""
        inputs = self.engine.read(Path(it.path))
        match = next((inp for inp in inputs if inp.source == it.source), None)
        if match is None:
            if len(inputs) == 1:
                match = inputs[0]
            else:
                raise VitascopeError(f"{it.source}: no longer in the file (it changed since it was added)")
        self.cache(it.source, match.image)
        return match


class EcgWidget(PluginWidgetBase):
    plugin_id = PLUGIN_ID

    def __init__(self, host: Host, engine: Any, parent: QWidget | None = None) -> None:
        super().__init__(host, engine, parent)
        try:
            _prewarm_imports()
        except Exception as e:  # a missing optional piece shows later, as a clear job error
            log.warning("ECG: could not pre-import reader modules (%s)", e)
        self.db_path = host.data_dir(PLUGIN_ID) / "worklist.sqlite"
        self.worklist: Worklist | None = None
        self.model_info: tuple[str, str] | None = None
        self.current: Item | None = None
        self.current_image: np.ndarray | None = None
        self.order_by, self.descending = "added", False
        self.last_errors: list[str] = []
        self._io = _ThreadSide(engine)
        self._last_refresh = 0.0
        self._build()
        self._restore_settings()
        self.open_worklist()
        self.refresh_model()
        host.on_models_changed(self.refresh_model)
        self._maybe_load_demo()

    # layout ------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.banner = Banner(NOTICE, "notice")
        self.message = Banner()
        self.recover_button = QPushButton("Move the damaged worklist aside and start a new one")
        self.recover_button.setVisible(False)
        self.recover_button.clicked.connect(self.recover_worklist)

        self.open_files_button = _button("Open files…", "Add ECG files (DICOM, WFDB .hea, images) to the worklist")
        self.open_files_button.clicked.connect(self._open_files_clicked)
        self.open_folder_button = _button("Open folder…", "Add every ECG file under a folder")
        self.open_folder_button.clicked.connect(self._open_folder_clicked)
        self.screen_button = _button("Screen all", "Screen every ECG that has no model result yet")
        self.screen_button.clicked.connect(self.screen_all)
        self.controls = JobControls(tip="Stop reading / screening; finished items are kept")
        self.cancel_button, self.progress = self.controls.cancel_button, self.controls.progress
        self.cancel_button.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
        self.progress.setMaximumWidth(160)
        self.export_menu = QMenu(self)
        self.export_menu.setToolTipsVisible(True)
        self.csv_action = self.export_menu.addAction("Worklist as CSV…")
        self.csv_action.triggered.connect(self._csv_clicked)
        self.pdf_action = self.export_menu.addAction("PDF report of the selected ECG…")
        self.pdf_action.triggered.connect(self._pdf_clicked)
        self.deid_action = self.export_menu.addAction("De-identified DICOM of the selected ECGs…")
        self.deid_action.triggered.connect(self._deid_clicked)
        self.export_menu.addSeparator()
        self.keep_annotations_action = self.export_menu.addAction("Keep cleaned measurements in de-identified DICOM")
        self.keep_annotations_action.setCheckable(True)
        self.keep_annotations_action.setToolTip("Keep the machine's coded measurements and safe statements (the "
                                                "de-identification profile removes all waveform annotations)")
        self.export_button = QToolButton()
        self.export_button.setText("Export")
        self.export_button.setToolTip("CSV of the worklist, PDF report, de-identified DICOM")
        self.export_button.setAccessibleName("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.export_button.setMenu(self.export_menu)
        self.export_button.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        toolbar = QHBoxLayout()
        for w in (self.open_files_button, self.open_folder_button, self.screen_button, self.controls):
            toolbar.addWidget(w)
        toolbar.addStretch(1)
        toolbar.addWidget(self.export_button)
        self.status_label = _StatusLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setAccessibleName("Status")

        # worklist
        self.status_filter = QComboBox()
        for text, value in (("All", None), ("New", "new"), ("Screened", "screened"), ("Reviewed", "reviewed")):
            self.status_filter.addItem(text, value)
        self.status_filter.setAccessibleName("Filter by status")
        self.label_filter = QComboBox()
        self.label_filter.addItem("Any label", None)
        for c in CLASSES:
            self.label_filter.addItem(CLASS_TITLES[c], c)
        self.label_filter.setAccessibleName("Filter by model label")
        self.decision_filter = QComboBox()
        for text, value in (("Any decision", None), ("Not decided", "none"), ("Confirmed", "confirm"),
                            ("Overridden", "override"), ("Uncertain", "uncertain"), ("⚠ Flagged", "flagged")):
            self.decision_filter.addItem(text, value)
        self.decision_filter.setAccessibleName("Filter by decision or flag")
        self.decision_filter.setToolTip("Filter by the reviewer's decision, or ⚠ Flagged: the model was uncertain")
        for combo in (self.status_filter, self.label_filter, self.decision_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(len(combo.itemText(0)) + 1)
        self.search_edit = QLineEdit()
        self.search_edit.setPlaceholderText("Search file, patient, date, comment…")
        self.search_edit.setClearButtonEnabled(True)
        self.search_edit.setAccessibleName("Search the worklist")
        self.search_edit.setMinimumWidth(80)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self.refresh)
        self.search_edit.textChanged.connect(lambda _t: self._search_timer.start())
        for combo in (self.status_filter, self.label_filter, self.decision_filter):
            combo.currentIndexChanged.connect(lambda _i: self.refresh())
        filters = QHBoxLayout()
        filters.addWidget(self.status_filter)
        filters.addWidget(self.label_filter)
        filters.addWidget(self.decision_filter)
        filters.addWidget(self.search_edit, 1)
        self.count_label = QLabel("")
        self.count_label.setWordWrap(True)
        self.table_model = WorklistModel(self._sort_requested)
        self.table = WorklistTable(self.table_model)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self._update_buttons())

        # viewer
        self.item_label = QLabel("Select an ECG in the worklist.")
        self.item_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.item_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.item_label.setAccessibleName("Selected ECG")
        self.preview = EcgPreview()
        self.zoom_out_button = _tool("−", "Zoom out (−)", self.preview.zoom_by, 1 / 1.25)
        self.zoom_in_button = _tool("+", "Zoom in (+)", self.preview.zoom_by, 1.25)
        self.fit_button = _tool("Fit", "Fit the ECG to the window (0)", self.preview.fit)
        self.preview.zoom_changed.connect(lambda z: self.fit_button.setToolTip(
            f"Fit the ECG to the window (0); now {z:.0%}, 1 shows actual pixels"))
        self.heatmap_check = QCheckBox("Heat map")
        self.heatmap_check.setToolTip("Show where the model looked (attention rollout); not a localisation of disease")
        self.heatmap_check.setAccessibleName("Show the attention heat map")
        self.heatmap_check.toggled.connect(self._heatmap_toggled)
        view_bar = QHBoxLayout()
        view_bar.setSpacing(2)
        view_bar.addWidget(self.item_label, 1)
        for w in (self.zoom_out_button, self.zoom_in_button, self.fit_button):
            view_bar.addWidget(w)
        view_bar.addSpacing(4)
        view_bar.addWidget(self.heatmap_check)

        # result: the model's answer beside the second opinion
        self.result_panel = ResultPanel()
        self.result_label = self.result_panel.result_label
        self.measure_label = self.result_panel.measure_label
        self.model_label = self.result_panel.model_label
        self.bars = self.result_panel.bars
        details = ResultScroll(self.result_panel)
        self.details = details
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(4)
        lv.addLayout(filters)
        table_and_details = QSplitter(Qt.Orientation.Vertical)
        table_and_details.addWidget(self.table)
        table_and_details.addWidget(details)
        table_and_details.setStretchFactor(0, 1)
        table_and_details.setStretchFactor(1, 1)
        table_and_details.setChildrenCollapsible(False)
        lv.addWidget(table_and_details, 1)
        lv.addWidget(self.count_label)
        lv.addWidget(self.status_label)
        left.setMinimumWidth(self.table.decision_width())

        # review
        self.reviewer_edit = QLineEdit()
        self.reviewer_edit.setPlaceholderText("Your name (recorded with each decision)")
        self.reviewer_edit.setAccessibleName("Reviewer")
        self.reviewer_edit.editingFinished.connect(self._save_settings)
        self.comment_edit = QPlainTextEdit()
        self.comment_edit.setPlaceholderText("Comment (optional)")
        self.comment_edit.setAccessibleName("Comment")
        self.comment_edit.setTabChangesFocus(True)
        self.confirm_button = _button("Confirm (Ctrl+Enter)", "Agree with the model's label (Ctrl+Enter)")
        self.confirm_button.setAccessibleName("Confirm the model's label")
        self.confirm_button.clicked.connect(lambda: self.confirm())
        self.override_combo = QComboBox()
        for c in CLASSES:
            self.override_combo.addItem(OVERRIDE_TITLES.get(c, CLASS_TITLES[c]), c)
            self.override_combo.setItemData(self.override_combo.count() - 1, CLASS_TITLES[c],
                                            Qt.ItemDataRole.ToolTipRole)
        self.override_combo.setAccessibleName("Override class")
        self.override_combo.setToolTip("The class recorded by Override (Ctrl+O)")
        self.override_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.override_button = _button("Override (Ctrl+O)", "Record the class chosen on the left instead of the "
                                                             "model's (Ctrl+O)")
        self.override_button.setAccessibleName("Override with the chosen class")
        self.override_button.clicked.connect(lambda: self.override())
        self.uncertain_button = _button("Uncertain (Ctrl+U)", "Mark for review / adjudication: no final label "
                                                               "(Ctrl+U)")
        self.uncertain_button.setAccessibleName("Mark as uncertain for review")
        self.uncertain_button.clicked.connect(lambda: self.mark_uncertain())
        self.review_status = QLabel("")
        self.review_status.setWordWrap(True)
        self.review_status.setAccessibleName("Review status")
        reviewer_label = QLabel("&Reviewer")
        reviewer_label.setBuddy(self.reviewer_edit)
        self.review_box = ReviewBox(reviewer_label, self.reviewer_edit, self.comment_edit, self.confirm_button,
                                    self.uncertain_button, self.override_combo, self.override_button,
                                    self.review_status)
        review_box = self.review_box

        right = QWidget()
        rv2 = QVBoxLayout(right)
        rv2.setContentsMargins(0, 0, 0, 0)
        rv2.setSpacing(4)
        rv2.addLayout(view_bar)
        rv2.addWidget(self.preview, 1)
        rv2.addWidget(review_box)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter

        layout = QVBoxLayout(self)
        layout.setSpacing(4)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.message)
        layout.addWidget(self.recover_button)
        layout.addLayout(toolbar)
        layout.addWidget(splitter, 1)

        # keyboard: the visual order, top to bottom and left to right; the table keeps arrows, Tab leaves it
        chain = [self.open_files_button, self.open_folder_button, self.screen_button, self.cancel_button,
                 self.export_button, self.status_filter, self.label_filter, self.decision_filter, self.search_edit,
                 self.table,
                 self.heatmap_check, self.preview, self.reviewer_edit, self.comment_edit, self.confirm_button,
                 self.override_combo, self.override_button, self.uncertain_button]
        for a, b in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(a, b)
        self.shortcuts: dict[str, list[QShortcut]] = {}
        for action, keys in SHORTCUTS.items():
            for key in keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(functools.partial(self._shortcut, action))
                self.shortcuts.setdefault(action, []).append(sc)

    # settings ----------------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = self.host.settings(PLUGIN_ID)
        if isinstance(s.get("reviewer"), str):
            self.reviewer_edit.setText(s["reviewer"])
        if isinstance(s.get("heatmap"), bool):
            self.heatmap_check.setChecked(s["heatmap"])
        if isinstance(s.get("keep_annotations"), bool):
            self.keep_annotations_action.setChecked(s["keep_annotations"])
        self.keep_annotations_action.toggled.connect(lambda _on: self._save_settings())

    def _save_settings(self, **extra: Any) -> None:
        self.host.save_settings(PLUGIN_ID, {**self.host.settings(PLUGIN_ID),
                                            "reviewer": self.reviewer_edit.text().strip(),
                                            "heatmap": self.heatmap_check.isChecked(),
                                            "keep_annotations": self.keep_annotations_action.isChecked(), **extra})

    # worklist ----------------------------------------------------------------------------------------------
    def open_worklist(self) -> None:
        try:
            self.worklist = Worklist(self.db_path)
        except WorklistCorrupt as e:
            self.worklist = None
            self._show_message(f"<b>The worklist cannot be opened.</b> {e}. You can move it aside (it is kept for "
                               "recovery) and start a new, empty worklist.")
            self.recover_button.setVisible(True)
        except VitascopeError as e:
            self.worklist = None
            self._show_message(f"<b>The worklist cannot be opened.</b> {e}")
        self._update_buttons()
        self.refresh()

    def recover_worklist(self) -> None:
        """Move the damaged worklist file aside and start a new one (the user asked for it)."""
        try:
            self.worklist = Worklist(self.db_path, recover=True)
        except VitascopeError as e:
            self._show_message(f"<b>The worklist cannot be opened.</b> {e}")
            return
        self.recover_button.setVisible(False)
        aside = self.worklist.recovered_from
        self._show_message(None)
        self.host.notify(f"Started a new ECG worklist; the damaged one was kept as {aside}", "warning")
        self.status_label.setText(f"The damaged worklist was kept as {aside}.")
        self.refresh_model()
        self._update_buttons()
        self.refresh()

    def _maybe_load_demo(self) -> None:
        """First run: preload the engine's bundled sample ECGs (once; the user may delete them later)."""
        if self.worklist is None or self.host.settings(PLUGIN_ID).get("demo_loaded"):
            return
        try:
            files = list(self.engine.demo_files())
        except Exception as e:  # a plug-in's missing data must show, not crash
            log.warning("ECG demo files unavailable: %s", e)
            files = []
        self._save_settings(demo_loaded=True)
        if files and len(self.worklist) == 0:
            self.open_files(files)

    def refresh(self) -> None:
        """Re-query the worklist with the current filters and order; keep the selected item selected."""
        self._last_refresh = time.monotonic()
        if self.worklist is None:
            self.table_model.set_rows([])
            self.count_label.setText("")
            return
        keep = self.current.id if self.current else None
        decision = self.decision_filter.currentData()
        rows = self.worklist.items(status=self.status_filter.currentData(), label=self.label_filter.currentData(),
                                   decision=None if decision == "flagged" else decision,
                                   flagged=True if decision == "flagged" else None,
                                   search=self.search_edit.text().strip() or None,
                                   order_by=self.order_by, descending=self.descending)
        self.table_model.set_rows(rows)
        c = self.worklist.counts()
        self.count_label.setText(f"{len(rows)} of {c['total']} shown · {c['new']} new, {c['screened']} screened, "
                                 f"{c['reviewed']} reviewed, {c['uncertain']} uncertain · "
                                 f"{self.worklist.flagged()} ⚠ flagged by the model")
        if keep is not None:
            row = next((i for i, it in enumerate(rows) if it.id == keep), None)
            if row is not None:
                self.table.selectionModel().blockSignals(True)
                self.table.selectionModel().setCurrentIndex(
                    self.table_model.index(row, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows)
                self.table.selectionModel().blockSignals(False)
                self.table.scrollTo(self.table_model.index(row, 0))
                self.current = rows[row]
                self._show_item(self.current, reload_image=False)
        self._update_buttons()

    def _sort_requested(self, key: str, descending: bool) -> None:
        self.order_by, self.descending = key, descending
        self.refresh()

    def select_item(self, item_id: int) -> bool:
        """Select an item in the table (it must pass the current filters); False if it is not shown."""
        row = next((i for i, it in enumerate(self.table_model.rows) if it.id == item_id), None)
        if row is None:
            return False
        index = self.table_model.index(row, 0)
        flags = QItemSelectionModel.SelectionFlag
        self.table.selectionModel().setCurrentIndex(index, flags.ClearAndSelect | flags.Rows)  # whatever keys are held
        self.table.scrollTo(index)
        return True

    def selected_items(self) -> list[Item]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.table_model.rows[r] for r in rows if r < len(self.table_model.rows)]

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid() or current.row() >= len(self.table_model.rows):
            return
        self.current = self.table_model.rows[current.row()]
        self.review_status.setText("")
        self._show_item(self.current, reload_image=True)

    # viewer ------------------------------------------------------------------------------------------------
    def _cached_image(self, source: str) -> np.ndarray | None:
        return self._io.cached(source)

    def _cache_image(self, source: str, image: np.ndarray) -> None:
        self._io.cache(source, image)

    def _show_item(self, it: Item, reload_image: bool) -> None:
        bits = [Path(it.path).name]
        if it.patient_name or it.patient_id:
            bits.append("patient " + " · ".join(x for x in (it.patient_name, it.patient_id) if x))
        if it.study_date:
            bits.append(f"study {it.study_date}")
        bits.append(it.kind)
        self._set_item_text(" — ".join(bits))
        self.result_panel.show_item(it)
        self._show_decision(it)
        self._update_buttons()
        if not reload_image:
            return
        img = self._cached_image(it.source)
        if img is not None:
            self._set_image(it, img)
            return
        self.current_image = None
        self._set_item_text(self.item_label.toolTip() + " (loading…)")

        io = self._io

        def load(tok: CancelToken, emit: Callable[[ProgressEvent], None]) -> np.ndarray:
            return io.read_input(it).image

        def done(image: np.ndarray) -> None:
            self._cache_image(it.source, image)
            if self.current is not None and self.current.id == it.id:
                self._set_item_text(self.item_label.toolTip().replace(" (loading…)", ""))
                self._set_image(it, image)

        def failed(msg: str) -> None:
            if self.current is not None and self.current.id == it.id:
                self._set_item_text(f"{Path(it.path).name}: {msg}")

        self.run_job(f"load {Path(it.path).name}", load, done, on_error=failed)

    def _set_item_text(self, text: str) -> None:
        """The selected ECG's one-line description, elided to the space it has (the whole line in the tooltip)."""
        self.item_label.setToolTip(text)
        width = max(60, self.item_label.width())
        self.item_label.setText(self.item_label.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, width))

    def _set_image(self, it: Item, image: np.ndarray) -> None:
        self.current_image = image
        self.preview.set_image(image)
        self._update_heatmap(it)

    def _update_heatmap(self, it: Item | None) -> None:
        hm = self.worklist.heatmap(it.id) if (self.worklist is not None and it is not None) else None
        self.heatmap_check.setEnabled(hm is not None)
        self.heatmap_check.setToolTip("Show where the model looked (attention rollout); not a localisation of "
                                      "disease" if hm is not None else "No heat map: this ECG is not screened yet")
        if hm is None or self.current_image is None:
            self.preview.set_heatmap(None)
            return
        heat, box = hm
        self.preview.set_heatmap(heat, box)
        self.preview.set_heat_visible(self.heatmap_check.isChecked())

    def _heatmap_toggled(self, on: bool) -> None:
        self.preview.set_heat_visible(on and self.heatmap_check.isEnabled())
        self._save_settings()

    @property
    def heatmap_shown(self) -> bool:
        return bool(self.heatmap_check.isEnabled() and self.heatmap_check.isChecked() and self.preview.heat_visible)

    def _show_decision(self, it: Item) -> None:
        if it.decision_action:
            lab = CLASS_TITLES.get(it.decision_label or "", it.decision_label or "no label")
            self.review_status.setText(f"Latest: {DECISION_TEXT.get(it.decision_action)} — {lab}, by {it.reviewer} "
                                       f"at {(it.decided_at or '')[:16].replace('T', ' ')} UTC")
        else:
            self.review_status.setText("Not reviewed yet.")
        if it.label in CLASSES:
            other = next(c for c in CLASSES if c != it.label)
            self.override_combo.setCurrentIndex(self.override_combo.findData(it.decision_label if
                                                                             it.decision_action == "override"
                                                                             else other))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.item_label.toolTip():
            QTimer.singleShot(0, lambda: self.closed or self._set_item_text(self.item_label.toolTip()))

    # model -------------------------------------------------------------------------------------------------
    def refresh_model(self) -> None:
        """Ask the engine which model screens (again when the zoo changes): no model → a clear message."""
        try:
            self.model_info = self.engine.model_info()
        except Exception as e:  # a broken model is reported, not fatal
            log.warning("ECG model lookup failed: %s", e)
            self.model_info = None
            self._show_message(f"<b>The ECG model cannot be used:</b> {e}")
        else:
            if self.worklist is not None:
                self._show_message(None if self.model_info else NO_MODEL)
        self._update_buttons()

    def _show_message(self, html: str | None) -> None:
        self.message.show_message(html)

    def _update_buttons(self) -> None:
        have = self.worklist is not None
        busy = "import" in self.jobs or "screen" in self.jobs
        self.open_files_button.setEnabled(have and not busy)
        self.open_folder_button.setEnabled(have and not busy)
        self.screen_button.setEnabled(have and not busy and self.model_info is not None)
        self.screen_button.setToolTip("Screen every ECG that has no model result yet" if self.model_info is not None
                                      else "No ECG model is installed (Model zoo → Install…)")
        rows = bool(self.table_model.rows)
        item = self.current
        dicom = bool(self._deid_targets())
        for action, ok, text, why, tip in (
                (self.csv_action, rows, "Worklist as CSV…", "the worklist is empty",
                 "The worklist is empty: open ECG files first"),
                (self.pdf_action, item is not None, "PDF report of the selected ECG…", "select an ECG",
                 "Select an ECG first"),
                (self.deid_action, dicom, "De-identified DICOM of the selected ECGs…", "select a DICOM ECG",
                 NO_DICOM_TIP)):
            action.setEnabled(have and ok)
            action.setText(text if ok else f"{text.rstrip('…')} ({why})")
            action.setToolTip("" if ok else tip)
        self.keep_annotations_action.setEnabled(have and dicom)
        self.confirm_button.setEnabled(have and item is not None and item.label is not None)
        self.override_button.setEnabled(have and item is not None)
        self.override_combo.setEnabled(have and item is not None)
        self.uncertain_button.setEnabled(have and item is not None)

    def _deid_targets(self) -> list[Item]:
        """The DICOM items among the selected rows (or the current item)."""
        chosen = self.selected_items() or ([self.current] if self.current is not None else [])
        return [it for it in chosen if it.kind.startswith("dicom")]

    def _shortcut(self, action: str) -> None:
        """A review shortcut: acts like its button (nothing when the button is disabled)."""
        button = {"confirm": self.confirm_button, "override": self.override_button,
                  "uncertain": self.uncertain_button}[action]
        if button.isEnabled() and button.isVisible():
            button.click()

    # jobs --------------------------------------------------------------------------------------------------
    def _start(self, key: str, name: str, fn: Callable[[CancelToken, Callable[[ProgressEvent], None]], Any],
               on_result: Callable[[Any], None], progress: bool = True) -> Job:
        def event(ev: ProgressEvent) -> None:
            if ev.message and not ev.terminal:
                self.status_label.setText(ev.message)
            if key == "screen" and ev.event == "progress" and time.monotonic() - self._last_refresh > 0.5:
                self.refresh()

        job = self.run_job(name, fn, on_result, on_error=self.status_label.setText, on_event=event, key=key,
                           controls=self.controls if progress else None)
        self._update_buttons()
        return job

    def job_ended(self, job: Job) -> None:
        if job.outcome == "cancelled":
            self.status_label.setText(f"{job.key.capitalize()} cancelled; finished items are kept.")
        if job.key in ("import", "screen"):
            self.refresh()
        self._update_buttons()

    def cancel(self) -> None:
        """Cancel reading and screening (the Cancel button); finished items are kept."""
        self.controls.cancel()

    # opening -----------------------------------------------------------------------------------------------
    def _open_files_clicked(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open ECG files", "",
                                                "ECG files (*.dcm *.dicom *.hea *.png *.jpg *.jpeg *.bmp *.tif "
                                                "*.tiff);;All files (*)")
        if paths:
            self.open_files([Path(p) for p in paths])

    def _open_folder_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of ECGs")
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> Job | None:
        try:
            files = Worklist.find_files(folder)
        except VitascopeError as e:
            self.status_label.setText(str(e))
            return None
        if not files:
            self.status_label.setText(f"{folder}: no ECG files (DICOM, WFDB .hea, images) found")
            return None
        return self.open_files(files)

    def open_files(self, paths: list[Path]) -> Job | None:
        """Read the files (on a job) and add one worklist item per ECG; unreadable files are listed, not fatal."""
        if self.worklist is None or "import" in self.jobs:
            return None
        worklist, paths, io = self.worklist, [Path(p) for p in paths], self._io

        def run(tok: CancelToken, emit: Callable[[ProgressEvent], None]) -> tuple[int, list[str]]:
            added, errors = 0, []
            for i, p in enumerate(paths):
                tok.check()
                emit(ProgressEvent("progress", step=i, total=len(paths), message=f"Reading {p.name}…"))
                added += worklist.add_files([p], read=io.read_and_cache, errors=errors)
            return added, errors

        def done(res: tuple[int, list[str]]) -> None:
            added, errors = res
            self.last_errors = errors
            text = f"Added {added} ECG(s) from {len(paths)} file(s)"
            if added < len(paths) - len(errors):
                text += " (the others were already in the worklist)"
            if errors:
                text += f"; {len(errors)} could not be read: " + "; ".join(errors[:3])
                self.host.notify(f"{len(errors)} ECG file(s) could not be read", "warning")
            self.status_label.setText(text)
            self.refresh()
            if self.current is None and self.table_model.rows:
                self.select_item(self.table_model.rows[0].id)

        return self._start("import", f"open {len(paths)} ECG file(s)", run, done)

    # screening ---------------------------------------------------------------------------------------------
    def screen_all(self) -> Job | None:
        """Screen every item without a model result, on a job (progress in the bar; Cancel keeps what is done)."""
        if self.worklist is None or "screen" in self.jobs:
            return None
        if self.model_info is None:
            self._show_message(NO_MODEL)
            return None
        todo = [it for it in self.worklist.items() if it.label is None]
        if not todo:
            self.status_label.setText("Nothing to screen: every ECG in the worklist has a model result.")
            return None
        worklist, io = self.worklist, self._io

        def run(tok: CancelToken, emit: Callable[[ProgressEvent], None]) -> tuple[int, list[str]]:
            done_n, errors = 0, []
            by_path: dict[str, list[Item]] = {}
            for it in todo:
                by_path.setdefault(it.path, []).append(it)
            step = 0
            for path, group in by_path.items():
                tok.check()
                try:
                    inputs = {inp.source: inp for inp in io.engine.read(Path(path))}
                except VitascopeError as e:
                    errors.append(str(e))
                    step += len(group)
                    continue
                for it in group:
                    tok.check()
                    emit(ProgressEvent("progress", step=step, total=len(todo),
                                       message=f"Screening {Path(path).name} ({step + 1}/{len(todo)})…"))
                    step += 1
                    inp = inputs.get(it.source) or (next(iter(inputs.values())) if len(inputs) == 1 else None)
                    if inp is None:
                        errors.append(f"{it.source}: no longer in the file")
                        continue
                    try:
                        result = io.engine.screen(inp)
                    except VitascopeError as e:
                        errors.append(f"{it.source}: {e}")
                        continue
                    except Exception as e:  # an engine bug on one ECG must not stop the others
                        log.exception("screening %s failed", it.source)
                        errors.append(f"{it.source}: could not be screened ({e.__class__.__name__}: {e})")
                        continue
                    worklist.set_result(it.id, result)
                    io.cache(it.source, inp.image)
                    done_n += 1
            emit(ProgressEvent("progress", step=len(todo), total=len(todo)))
            return done_n, errors

        def done(res: tuple[int, list[str]]) -> None:
            n, errors = res
            self.last_errors = errors
            if self.worklist is None:  # closed meanwhile
                return
            text = f"Screened {n} ECG(s)"
            if errors:
                text += f"; {len(errors)} failed: " + "; ".join(errors[:3])
            self.status_label.setText(text)
            self.host.notify(text, "warning" if errors else "info")
            self.refresh()
            if self.current is not None:
                self._show_item(self.worklist.get(self.current.id), reload_image=False)
                if self.current_image is not None:
                    self._update_heatmap(self.current)

        return self._start("screen", f"screen {len(todo)} ECG(s)", run, done)

    # review ------------------------------------------------------------------------------------------------
    def _decide(self, action: str, label: str | None = None) -> bool:
        it = self.current
        if self.worklist is None or it is None:
            self.review_status.setText("Select an ECG first.")
            return False
        reviewer = self.reviewer_edit.text().strip()
        shown = {"label": it.label, "probabilities": it.probabilities, "heatmap": self.heatmap_shown,
                 "uncertain": it.uncertain, "reasons": it.reasons, "scope": it.scope,
                 "second_opinion": (it.second_opinion or {}).get("label"), "disagreement": it.disagreement}
        try:
            self.worklist.decide(it.id, reviewer, action, label, self.comment_edit.toPlainText(), shown)
        except VitascopeError as e:
            self.review_status.setText(f"<b>Not recorded:</b> {e}")
            return False
        self._save_settings()
        self.comment_edit.clear()
        self.current = self.worklist.get(it.id)
        self.refresh()
        self._show_decision(self.current)
        return True

    def confirm(self) -> bool:
        return self._decide("confirm")

    def override(self, label: str | None = None) -> bool:
        return self._decide("override", label or self.override_combo.currentData())

    def mark_uncertain(self) -> bool:
        return self._decide("uncertain")

    # exports -----------------------------------------------------------------------------------------------
    def _csv_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the worklist", "ecg-worklist.csv", "CSV (*.csv)")
        if path:
            self.export_csv(Path(path))

    def export_csv(self, path: Path) -> Job | None:
        if self.worklist is None:
            return None
        worklist = self.worklist
        return self._start("csv", f"export {path.name}", lambda tok, emit: export_csv(worklist, path),
                           lambda p: self._saved(p), progress=False)

    def _saved(self, path: Path) -> None:
        self.status_label.setText(f"Saved {path}")
        self.host.notify(f"Saved {path.name}")

    def _pdf_clicked(self) -> None:
        if self.current is None:
            return
        name = Path(self.current.path).stem + "-report.pdf"
        path, _ = QFileDialog.getSaveFileName(self, "Save the PDF report", name, "PDF (*.pdf)")
        if path:
            self.export_pdf(Path(path))

    def export_pdf(self, path: Path) -> Job | None:
        """A one-page PDF of the selected ECG (with the heat map when it is shown on screen)."""
        if self.worklist is None or self.current is None:
            return None
        it, worklist, with_heat, io = self.current, self.worklist, self.heatmap_shown, self._io
        decision = worklist.latest_decision(it.id)

        def run(tok: CancelToken, emit: Callable[[ProgressEvent], None]) -> Path:
            image = io.cached(it.source)
            if image is None:
                image = io.read_input(it).image
            hm = worklist.heatmap(it.id) if with_heat else None
            fields = {"Patient": it.patient_name, "Patient ID": it.patient_id, "Study date": it.study_date,
                      "File": Path(it.source).name, "Content sha256": it.sha256[:16] + "…"}
            return write_pdf_report(path, image, it.result(), decision, fields,
                                    heatmap=hm[0] if hm else None, heatmap_box=hm[1] if hm else None)

        return self._start("pdf", f"report {path.name}", run, self._saved, progress=False)

    def _deid_clicked(self) -> None:
        if not self._deid_targets():
            self.status_label.setText(NO_DICOM_TIP + ".")
            return
        folder = QFileDialog.getExistingDirectory(self, "Folder for the de-identified DICOM copies")
        if folder:
            self.export_deid(Path(folder))

    def export_deid(self, folder: Path, items: list[Item] | None = None) -> Job | None:
        """De-identified copies (PS3.15 Annex E basic profile) of the given DICOM ECGs, else of the selected ones.
        Output names carry no patient data: ecg-deid-NNN.dcm, never overwriting."""
        if self.worklist is None:
            return None
        chosen = items if items is not None else self._deid_targets()
        paths = list(dict.fromkeys(it.path for it in chosen if it.kind.startswith("dicom")))
        if not paths:
            self.status_label.setText(NO_DICOM_TIP + ".")
            return None
        keep = self.keep_annotations_action.isChecked()

        def run(tok: CancelToken, emit: Callable[[ProgressEvent], None]) -> tuple[list[Path], list[str]]:
            from .deid import deidentify_dicom

            folder.mkdir(parents=True, exist_ok=True)
            written, errors = [], []
            n = 0
            for i, src in enumerate(paths):
                tok.check()
                emit(ProgressEvent("progress", step=i, total=len(paths), message="De-identifying…"))
                while True:
                    n += 1
                    dst = folder / f"ecg-deid-{n:03d}.dcm"
                    if not dst.exists():
                        break
                try:
                    written.append(deidentify_dicom(src, dst, keep_waveform_annotations=keep).dst)
                except VitascopeError as e:
                    errors.append(str(e))
            return written, errors

        def done(res: tuple[list[Path], list[str]]) -> None:
            written, errors = res
            self.last_errors = errors
            text = f"Wrote {len(written)} de-identified DICOM file(s) to {folder}"
            if errors:
                text += f"; {len(errors)} failed: " + "; ".join(errors[:3])
            self.status_label.setText(text)
            self.host.notify(text, "warning" if errors else "info")

        return self._start("deid", "de-identify DICOM", run, done, progress=False)

    # lifecycle ---------------------------------------------------------------------------------------------
    def start_demo(self) -> None:
        """Used by `vitascope gui --smoke`: screen what is loaded (when a model is there) and show the first ECG."""
        if self.table_model.rows and self.current is None:
            self.select_item(self.table_model.rows[0].id)
        if self.model_info is not None:
            self.screen_all()

    def on_shutdown(self) -> None:
        """Close the database once this widget's jobs are cancelled and joined."""
        self._search_timer.stop()
        if self.worklist is not None:
            self.worklist.close()
            self.worklist = None


class _StatusLabel(QLabel):
    """A one-line status that takes no room while it is empty."""

    def setText(self, text: str) -> None:  # noqa: N802
        super().setText(text)
        self.setVisible(bool(text))


def _button(text: str, tip: str) -> QPushButton:
    """A push button that never gets narrower than its text."""
    b = QPushButton(text)
    b.setToolTip(tip)
    b.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
    return b


def _tool(text: str, tip: str, fn: Callable[..., None], *args: Any) -> QToolButton:
    """A small viewer button; the viewer's own keys do the same, so it stays out of the Tab chain."""
    b = QToolButton()
    b.setText(text)
    b.setToolTip(tip)
    b.setAccessibleName(tip.split(" (")[0])
    b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    b.setAutoRaise(True)
    b.clicked.connect(lambda: fn(*args))
    return b


class ReviewBox(QFrame):
    """Reviewer, comment and the three decisions: two buttons a row when there is room, one a row when narrow
    (the order, and so the Tab order, is the same either way: Confirm, Uncertain, class, Override)."""

    def __init__(self, reviewer_label: QLabel, reviewer: QWidget, comment: QWidget, confirm: QWidget,
                 uncertain: QWidget, combo: QWidget, override: QWidget, status: QWidget) -> None:
        super().__init__()
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName("Review")
        self._parts = (confirm, uncertain, combo, override)
        self._status = status
        self._comment = comment
        self.grid = QGridLayout(self)
        self.grid.setVerticalSpacing(3)
        self.grid.setHorizontalSpacing(4)
        self.grid.setContentsMargins(6, 4, 6, 4)
        self.grid.addWidget(reviewer_label, 0, 0)
        self.grid.addWidget(reviewer, 0, 1, 1, 3)
        self.grid.addWidget(comment, 1, 0, 1, 4)
        self.grid.setColumnStretch(1, 1)
        self.grid.setColumnStretch(3, 1)
        self._wide: bool | None = None
        self.set_wide(True)

    def wide_width(self) -> int:
        a, b, c, d = (w.sizeHint().width() for w in self._parts)
        m = self.grid.contentsMargins()
        return max(a + b, c + d) + self.grid.horizontalSpacing() + m.left() + m.right() + 2 * self.frameWidth()

    def set_wide(self, wide: bool) -> None:
        if wide == self._wide:
            return
        self._wide = wide
        for w in (*self._parts, self._status):
            self.grid.removeWidget(w)
        cells = (((2, 0, 1, 2), (2, 2, 1, 2), (3, 0, 1, 2), (3, 2, 1, 2)) if wide else
                 ((2, 0, 1, 4), (3, 0, 1, 4), (4, 0, 1, 4), (5, 0, 1, 4)))
        for w, cell in zip(self._parts, cells, strict=True):
            self.grid.addWidget(w, *cell)
        self.grid.addWidget(self._status, 6, 0, 1, 4)
        lines = 2 if wide else 1  # narrow means little room: a one-line comment box (it scrolls)
        self._comment.setFixedHeight(lines * self._comment.fontMetrics().lineSpacing() + 12)

    @property
    def wide(self) -> bool:
        return bool(self._wide)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        """Narrow enough for the one-a-row arrangement (it switches on resize)."""
        hint = super().minimumSizeHint()
        narrow = max(w.sizeHint().width() for w in self._parts) + 16 + 2 * self.frameWidth()
        return QSize(min(hint.width(), narrow), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        self.set_wide(self.width() >= self.wide_width())
        super().resizeEvent(event)
