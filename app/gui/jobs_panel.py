"""The jobs panel: one row per job with state, a progress bar (step/total, ETA), last message and Cancel."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .jobs_qt import FAILED, JobRecord, JobsModel

COLUMNS = ("Job", "State", "Progress", "Message", "")
_STATE_COLOURS = {"failed": "#c0392b", "cancelled": "#b9770e", "finished": "#1e8449"}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    return f"ETA {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"ETA {s // 60}:{s % 60:02d}"


class JobsPanel(QWidget):
    """View of a JobsModel. `row_state(record)` / `row_message(record)` read what a row shows (tests)."""

    def __init__(self, model: JobsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        for col, mode in enumerate((QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.ResizeToContents,
                                    QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.Stretch,
                                    QHeaderView.ResizeMode.ResizeToContents)):
            header.setSectionResizeMode(col, mode)
        self.tree.setColumnWidth(0, 220)
        self.tree.setColumnWidth(2, 220)
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.clicked.connect(self.clear_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self._items: dict[int, QTreeWidgetItem] = {}
        self._bars: dict[int, QProgressBar] = {}
        self._cancel: dict[int, QPushButton] = {}
        model.added.connect(self._add)
        model.changed.connect(self._update)
        for rec in model.records:
            self._add(rec)
        self._timer = QTimer(self)  # ETA ticks and jobs tracked without events
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _add(self, rec: JobRecord) -> None:
        item = QTreeWidgetItem([rec.name, "", "", "", ""])
        item.setToolTip(0, f"{rec.kind} job")
        self.tree.addTopLevelItem(item)
        bar = QProgressBar()
        bar.setTextVisible(True)
        bar.setMaximumHeight(18)
        cancel = QPushButton("Cancel")
        cancel.setToolTip(f"Cancel {rec.name}")
        cancel.clicked.connect(lambda _=False, r=rec: self.model.cancel(r))
        self.tree.setItemWidget(item, 2, bar)
        self.tree.setItemWidget(item, 4, cancel)
        self._items[rec.id], self._bars[rec.id], self._cancel[rec.id] = item, bar, cancel
        self._update(rec)

    def _update(self, rec: JobRecord) -> None:
        item = self._items.get(rec.id)
        if item is None:
            return
        item.setText(1, rec.state)
        colour = _STATE_COLOURS.get(rec.state)
        item.setForeground(1, QBrush(QColor(colour)) if colour else self.tree.palette().text())
        item.setText(3, rec.message)
        item.setToolTip(3, rec.message)
        bar = self._bars[rec.id]
        frac = rec.fraction
        if frac is None and rec.active:
            bar.setRange(0, 0)  # busy indicator
        else:
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * (frac if frac is not None else (0.0 if rec.state == FAILED else 1.0))))
        eta = format_eta(rec.eta_s())
        if rec.step is not None and rec.total:
            bar.setFormat(f"{rec.step}/{rec.total}" + (f"  ·  {eta}" if eta else ""))
        else:
            bar.setFormat("" if rec.active else rec.state)
        self._cancel[rec.id].setEnabled(rec.state == "running")

    def _tick(self) -> None:
        self.model.poll()
        for rec in self.model.records:
            if rec.active and rec.step is not None:
                self._update(rec)

    def clear_finished(self) -> None:
        for rec in self.model.clear_finished():
            item = self._items.pop(rec.id, None)
            self._bars.pop(rec.id, None)
            self._cancel.pop(rec.id, None)
            if item is not None:
                self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))

    # for tests and the status bar -----------------------------------------------------------------------------
    def row_state(self, rec: JobRecord) -> str:
        return self._items[rec.id].text(1)

    def row_message(self, rec: JobRecord) -> str:
        return self._items[rec.id].text(3)

    def stop_timer(self) -> None:
        self._timer.stop()
