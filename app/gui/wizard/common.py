"""Small widgets shared by the wizard pages: a problems label, numpy thumbnails as pixmaps, combo and spin boxes
and labelled form boxes set up in one call, and one way to connect their edits."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

ERROR_STYLE = "color: #c0392b;"
OK_STYLE = "color: #1e8449;"
MUTED_STYLE = "color: palette(placeholder-text);"  # secondary text, readable in both themes


def pixmap_from_rgb(img: np.ndarray, size: int = 72) -> QPixmap:
    """(H, W, 3) uint8 → a QPixmap scaled to `size` px (nearest, so small images stay crisp)."""
    a = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = a.shape[:2]
    qimg = QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.FastTransformation)


def message_label(parent: QWidget | None = None) -> QLabel:
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def show_problems(label: QLabel, problems: list[str]) -> None:
    """Red bullet list of what is missing, or nothing."""
    if problems:
        label.setStyleSheet(ERROR_STYLE)
        label.setText("\n".join(f"• {p}" for p in problems))
    else:
        label.setStyleSheet(OK_STYLE)
        label.setText("")


def combo(items: Iterable[tuple[str, str]]) -> QComboBox:
    """A combo box showing each (key, text) item's text, with its key as the item data."""
    box = QComboBox()
    for key, text in items:
        box.addItem(text, key)
    return box


def int_spin(lo: int, hi: int, step: int | None = None) -> QSpinBox:
    """An integer spin box over [lo, hi], stepping by `step` when given."""
    box = QSpinBox()
    box.setRange(lo, hi)
    if step is not None:
        box.setSingleStep(step)
    return box


def on_edit(slot: Callable[..., object], *widgets: QWidget) -> None:
    """Call `slot` whenever any of `widgets` (spin boxes, line edits, combo boxes) is edited."""
    for w in widgets:
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.valueChanged.connect(slot)
        elif isinstance(w, QLineEdit):
            w.textChanged.connect(slot)
        elif isinstance(w, QComboBox):
            w.currentIndexChanged.connect(slot)
        else:
            raise TypeError(f"on_edit: no edit signal for {type(w).__name__}")


def form_box(title: str, *rows: tuple[str, QWidget | QLayout] | QWidget) -> QGroupBox:
    """A group box titled `title` with a form of (label, field) rows; a bare widget spans a whole row."""
    box = QGroupBox(title)
    form = QFormLayout(box)
    for row in rows:
        if isinstance(row, tuple):
            form.addRow(*row)
        else:
            form.addRow(row)
    return box
