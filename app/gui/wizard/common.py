"""Small widgets shared by the wizard pages: a problems label, numpy thumbnails as pixmaps, a form helper."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QWidget

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
