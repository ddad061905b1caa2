"""The jobs panel: running jobs first with a progress bar (step/total, ETA from the measured speed) and Cancel;
finished jobs below with their final state."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QKeyEvent
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
    """View of a JobsModel: running jobs first, finished ones below in their own group with their final state.
    `row_state(record)` / `row_message(record)` read what a row shows (tests)."""

    def __init__(self, model: JobsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.tree = QTreeWidget()
        self.tree.setAccessibleName("Jobs")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setMinimumHeight(80)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(40)
        for col, mode in enumerate((QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.ResizeToContents,
                                    QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.Stretch,
                                    QHeaderView.ResizeMode.ResizeToContents)):
            header.setSectionResizeMode(col, mode)
        self.tree.setColumnWidth(0, 200)
        self.tree.setColumnWidth(2, 190)
        self.running_group = self._group("Running")
        self.finished_group = self._group("Finished")
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip("Remove the finished, failed and cancelled jobs from this list")
        self.clear_button.clicked.connect(self.clear_finished)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        self.tree.installEventFilter(self)  # Delete cancels the selected job
        self._items: dict[int, QTreeWidgetItem] = {}
        self._bars: dict[int, QProgressBar] = {}
        self._cancel: dict[int, QPushButton] = {}
        self._retired: list[QWidget] = []
        model.added.connect(self._add)
        model.changed.connect(self._update)
        for rec in model.records:
            self._add(rec)
        self._count()
        self._timer = QTimer(self)  # ETA ticks and jobs tracked without events
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _group(self, title: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem([title])
        item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = item.font(0)
        font.setBold(True)
        item.setFont(0, font)
        self.tree.addTopLevelItem(item)
        item.setFirstColumnSpanned(True)
        item.setExpanded(True)
        return item

    @staticmethod
    def _shown(group: QTreeWidgetItem) -> list[QTreeWidgetItem]:
        return [group.child(i) for i in range(group.childCount()) if not group.child(i).isHidden()]

    def _count(self) -> None:
        for group, title in ((self.running_group, "Running"), (self.finished_group, "Finished")):
            group.setText(0, f"{title} ({len(self._shown(group))})")
        self.clear_button.setEnabled(bool(self._shown(self.finished_group)))

    def _add(self, rec: JobRecord) -> None:
        item = QTreeWidgetItem([rec.name, "", "", "", ""])
        item.setToolTip(0, f"{rec.name} ({rec.kind} job)")
        item.setData(0, Qt.ItemDataRole.UserRole, rec.id)
        self._items[rec.id] = item
        if rec.active:
            self.running_group.addChild(item)
            self._add_controls(rec, item)
        else:
            self.finished_group.insertChild(0, item)
        self._update(rec)

    def _add_controls(self, rec: JobRecord, item: QTreeWidgetItem) -> None:
        bar = QProgressBar()
        bar.setTextVisible(True)
        bar.setMaximumHeight(18)
        bar.setAccessibleName(f"Progress of {rec.name}")
        cancel = QPushButton("Cancel")
        cancel.setToolTip(f"Cancel {rec.name}")
        cancel.setAccessibleName(f"Cancel {rec.name}")
        cancel.clicked.connect(lambda _=False, r=rec: self.model.cancel(r))
        self.tree.setItemWidget(item, 2, bar)
        self.tree.setItemWidget(item, 4, cancel)
        self._bars[rec.id], self._cancel[rec.id] = bar, cancel

    def _move_to_finished(self, rec: JobRecord, item: QTreeWidgetItem) -> QTreeWidgetItem:
        """An ended job gets a row at the top of the finished group, without bar and Cancel button. Its running
        row is hidden, not removed: removing a row whose index widgets Python also holds crashed PySide."""
        item.setHidden(True)
        for widget in (self._bars.pop(rec.id, None), self._cancel.pop(rec.id, None)):
            if widget is not None:
                widget.setEnabled(False)
                self._retired.append(widget)
        done = QTreeWidgetItem([rec.name, "", "", "", ""])
        done.setToolTip(0, item.toolTip(0))
        done.setData(0, Qt.ItemDataRole.UserRole, rec.id)
        self.finished_group.insertChild(0, done)
        self._items[rec.id] = done
        if self.tree.currentItem() is item:
            self.tree.setCurrentItem(done)
        self._count()
        return done

    def _update(self, rec: JobRecord) -> None:
        item = self._items.get(rec.id)
        if item is None:
            return
        if not rec.active and item.parent() is self.running_group:
            item = self._move_to_finished(rec, item)
        item.setText(1, rec.state)
        colour = _STATE_COLOURS.get(rec.state)
        item.setForeground(1, QBrush(QColor(colour)) if colour else self.tree.palette().text())
        item.setText(3, rec.message)
        item.setToolTip(3, rec.message)
        eta = format_eta(rec.eta_s())
        steps = f"{rec.step}/{rec.total}" if rec.step is not None and rec.total else ""
        bar = self._bars.get(rec.id)
        if bar is None:
            item.setText(2, steps or rec.state)
            self._count()
            return
        frac = rec.fraction
        if frac is None and rec.active:
            bar.setRange(0, 0)  # busy indicator
        else:
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * (frac if frac is not None else (0.0 if rec.state == FAILED else 1.0))))
        if steps:
            bar.setFormat(steps + (f"  ·  {eta}" if eta else ("  ·  measuring speed…" if rec.active else "")))
        else:
            bar.setFormat("" if rec.active else rec.state)
        bar.setToolTip(bar.format())
        self._cancel[rec.id].setEnabled(rec.state == "running")
        self._count()

    def _tick(self) -> None:
        self.model.poll()
        for rec in self.model.records:
            if rec.active and rec.step is not None:
                self._update(rec)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.tree and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and event.key() == Qt.Key.Key_Delete:
            self._cancel_selected()
            return True
        return super().eventFilter(watched, event)

    def _cancel_selected(self) -> None:
        rec = self.selected()
        if rec is not None and rec.active:
            self.model.cancel(rec)

    def clear_finished(self) -> None:
        for rec in self.model.clear_finished():
            item = self._items.pop(rec.id, None)
            if item is not None and item.parent() is not None:
                item.parent().removeChild(item)
        self._count()

    # for tests and the status bar -----------------------------------------------------------------------------
    def rows(self) -> list[JobRecord]:
        """The jobs in the order shown: running first, then finished (newest first)."""
        by_id = {r.id: r for r in self.model.records}
        out = []
        for group in (self.running_group, self.finished_group):
            for child in self._shown(group):
                rec = by_id.get(child.data(0, Qt.ItemDataRole.UserRole))
                if rec is not None:
                    out.append(rec)
        return out

    def selected(self) -> JobRecord | None:
        """The job of the current row (None on a group row or with nothing selected)."""
        item = self.tree.currentItem()
        job_id = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        return next((r for r in self.model.records if r.id == job_id), None)

    def row_state(self, rec: JobRecord) -> str:
        return self._items[rec.id].text(1)

    def row_message(self, rec: JobRecord) -> str:
        return self._items[rec.id].text(3)

    def stop_timer(self) -> None:
        self._timer.stop()
