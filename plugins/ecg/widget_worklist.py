"""The worklist table: its model over `Worklist.items` and a view that keeps the decision columns (file, label,
P(abnormal), flag, decision, reviewer) in sight at any width, elides long names, and leaves Tab to the form."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from .review import Item
from .types import CLASS_TITLES

COLUMNS: tuple[tuple[str, str], ...] = (  # (header, Worklist order_by key); the first six are decision columns
    ("File", "file"), ("Label", "label"), ("P(abn.)", "p_abnormal"), ("⚠", "uncertain"),
    ("Decision", "decision"), ("Reviewer", "reviewer"),
    ("Patient", "patient"), ("Study date", "study_date"), ("Status", "status"), ("#", "added"),
)
DECISION_COLUMNS = 6
SHORT_TITLES = {"normal": "Normal", "abnormal_heartbeat": "Abnormal beat", "myocardial_infarction": "Acute MI",
                "history_of_mi": "History of MI", "other": "Other"}
HEADER_TIPS = {
    "label": "The model's label",
    "p_abnormal": "P(abnormal) = 1 − P(normal), the model's calibrated probability",
    "uncertain": "⚠ the model's answer is uncertain or the input is unlike its training data: review it",
    "decision": "The latest reviewer decision (→ = overridden to)",
}
DECISION_TEXT = {"confirm": "Confirmed", "override": "Overridden", "uncertain": "Uncertain"}
FLAG_COLOUR = QColor(230, 126, 34)
# width of typical content per column, measured in the table's font; the file column takes what is left
_SAMPLES = {"label": "Normal rhythm", "p_abnormal": "0.00", "uncertain": "⚠", "decision": "Confirmed",
            "reviewer": "Dr. Rossi", "patient": "Doe^Jane · 123456", "study_date": "20250101",
            "status": "screened", "added": "0000", "file": "ecg-0.png"}


def label_text(it: Item, short: bool = True) -> str:
    if it.label is None:
        return ""
    if it.scope == "rhythm-only" and it.label == "normal":
        return "Normal rhythm"
    return (SHORT_TITLES if short else CLASS_TITLES).get(it.label, it.label)


def decision_text(it: Item, short: bool = True) -> str:
    if not it.decision_action:
        return ""
    if it.decision_action == "override":
        lab = (SHORT_TITLES if short else CLASS_TITLES).get(it.decision_label or "", it.decision_label or "")
        return f"→ {lab}" if short else f"Overridden: {lab}"
    return DECISION_TEXT.get(it.decision_action, it.decision_action)


def flag_lines(it: Item) -> list[str]:
    """Why an item is flagged, one line each (empty when it is not)."""
    lines = []
    if it.uncertain:
        lines.append("Uncertain — review: " + ("; ".join(it.reasons) if it.reasons else "no reason given"))
    if it.scope == "rhythm-only":
        lines.append("Rhythm only: MI not assessed")
    if it.disagreement:
        lines.append("Second opinion disagrees: " + it.disagreement)
    return lines


class WorklistModel(QAbstractTableModel):
    """The table over `Worklist.items`: the widget queries (filter + order) and hands the rows in."""

    def __init__(self, on_sort: Callable[[str, bool], None]) -> None:
        super().__init__()
        self.rows: list[Item] = []
        self._on_sort = on_sort

    def set_rows(self, rows: list[Item]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(COLUMNS[section][1])
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        it = self.rows[index.row()]
        key = COLUMNS[index.column()][1]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(it, key)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._long_text(it, key)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if key in ("added", "p_abnormal"):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if key == "uncertain":
                return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ForegroundRole and key == "uncertain" and it.uncertain:
            return QBrush(FLAG_COLOUR)
        if role == Qt.ItemDataRole.UserRole:
            return it.id
        return None

    @staticmethod
    def _text(it: Item, key: str) -> str:
        if key == "added":
            return str(it.id)
        if key == "file":
            name = Path(it.path).name
            extra = it.source[len(it.path):] if it.source.startswith(it.path) else ""
            return name + extra
        if key == "patient":
            return " · ".join(x for x in (it.patient_name, it.patient_id) if x) or ""
        if key == "study_date":
            return it.study_date or ""
        if key == "status":
            return it.status
        if key == "label":
            return label_text(it)
        if key == "p_abnormal":
            return "" if it.p_abnormal is None else f"{it.p_abnormal:.2f}"
        if key == "uncertain":
            return "⚠" if it.uncertain else ("R" if it.scope == "rhythm-only" else "")
        if key == "decision":
            return decision_text(it)
        if key == "reviewer":
            return it.reviewer or ""
        return ""

    @classmethod
    def _long_text(cls, it: Item, key: str) -> str:
        if key == "file":
            return it.source
        if key == "label":
            return label_text(it, short=False) + (" (rhythm only: MI not assessed)"
                                                  if it.scope == "rhythm-only" else "")
        if key == "uncertain":
            return "\n".join(flag_lines(it)) or ("Not flagged" if it.uncertain is False else "")
        if key == "decision" and it.decision_action:
            when = (it.decided_at or "")[:16].replace("T", " ")
            return f"{decision_text(it, short=False)} by {it.reviewer} at {when} UTC"
        return cls._text(it, key)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._on_sort(COLUMNS[column][1], order == Qt.SortOrder.DescendingOrder)


class _MiddleElide(QStyledItemDelegate):
    """File names keep their start and their extension / group when elided."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:  # noqa: N802
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class WorklistTable(QTableView):
    """Rows change by arrow keys or a click; Tab leaves the table. On every resize the decision columns get their
    content's width, the file column what is left (names elide in the middle, full path in the tooltip), and the
    other columns show only while they fit without pushing a decision column out of sight."""

    def __init__(self, model: WorklistModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setTabKeyNavigation(False)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self._file_delegate = _MiddleElide(self)
        self.setItemDelegateForColumn(0, self._file_delegate)
        self.setWordWrap(False)
        self.setSortingEnabled(True)
        self.setAlternatingRowColors(True)
        self.setAccessibleName("ECG worklist")
        self.setAccessibleDescription("Up and Down change the selected ECG; Tab moves on to the review form")
        header = self.horizontalHeader()
        header.setSortIndicator(len(COLUMNS) - 1, Qt.SortOrder.AscendingOrder)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        header.setMinimumSectionSize(24)
        self.verticalHeader().setVisible(False)
        self.setMinimumWidth(self.decision_width())
        model.modelReset.connect(self.fit_columns)

    def _width(self, key: str) -> int:
        fm = self.fontMetrics()
        hfm = self.horizontalHeader().fontMetrics()
        header = next(h for h, k in COLUMNS if k == key)
        return max(fm.horizontalAdvance(_SAMPLES[key]) + 8, hfm.horizontalAdvance(header) + 12)

    def decision_width(self) -> int:
        """The narrowest width that shows every decision column (file names elided)."""
        keys = [k for _, k in COLUMNS[:DECISION_COLUMNS]]
        return (sum(self._width(k) for k in keys) + self.verticalScrollBar().sizeHint().width()
                + 2 * self.frameWidth() + 4)

    def fit_columns(self) -> None:
        """Decision columns first (at their minimum, then grown to their content), then the other columns while
        they fit, and the rest to the file column."""
        avail = self.viewport().width()
        keys = [k for _, k in COLUMNS]
        widths = {k: self._width(k) for k in keys}
        spare = avail - sum(widths[k] for k in keys[:DECISION_COLUMNS])
        for i, key in enumerate(keys[1:DECISION_COLUMNS], start=1):
            want = min(max(widths[key], self.sizeHintForColumn(i)), 2 * widths[key])
            grow = max(0, min(want - widths[key], spare - widths["file"]))
            widths[key] += grow
            spare -= grow
        spare -= widths["file"]  # the file column keeps room for a longer name before the others show
        for i, key in enumerate(keys[DECISION_COLUMNS:], start=DECISION_COLUMNS):
            show = spare >= widths[key]
            self.setColumnHidden(i, not show)
            if show:
                spare -= widths[key]
        used = 0
        for i, key in enumerate(keys[1:], start=1):
            if not self.isColumnHidden(i):
                self.setColumnWidth(i, widths[key])
                used += widths[key]
        self.setColumnWidth(0, max(widths["file"], avail - used - 2))

    def _keep_current_in_sight(self) -> None:
        if self.currentIndex().isValid():
            self.scrollTo(self.currentIndex())

    def viewportEvent(self, event: QEvent) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize:
            self.fit_columns()
            QTimer.singleShot(0, self._keep_current_in_sight)
        return super().viewportEvent(event)
