"""Light and dark themes: the Fusion style with a matching palette, plus `resources/style.qss` if present."""

from __future__ import annotations

import logging

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from app.core import paths

log = logging.getLogger(__name__)
THEMES = ("light", "dark")

_DARK = {
    QPalette.ColorRole.Window: "#2b2d31", QPalette.ColorRole.WindowText: "#e6e6e6",
    QPalette.ColorRole.Base: "#1f2023", QPalette.ColorRole.AlternateBase: "#2f3136",
    QPalette.ColorRole.ToolTipBase: "#3a3d42", QPalette.ColorRole.ToolTipText: "#f0f0f0",
    QPalette.ColorRole.Text: "#e6e6e6", QPalette.ColorRole.Button: "#35373c",
    QPalette.ColorRole.ButtonText: "#e6e6e6", QPalette.ColorRole.BrightText: "#ff6b6b",
    QPalette.ColorRole.Link: "#6cb4ff", QPalette.ColorRole.Highlight: "#3d7edb",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.PlaceholderText: "#8a8d93",
}
_LIGHT = {
    QPalette.ColorRole.Window: "#f3f4f6", QPalette.ColorRole.WindowText: "#1d1f23",
    QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f0f2f5",
    QPalette.ColorRole.ToolTipBase: "#ffffe1", QPalette.ColorRole.ToolTipText: "#1d1f23",
    QPalette.ColorRole.Text: "#1d1f23", QPalette.ColorRole.Button: "#e9ebef",
    QPalette.ColorRole.ButtonText: "#1d1f23", QPalette.ColorRole.BrightText: "#c0392b",
    QPalette.ColorRole.Link: "#1f5fbf", QPalette.ColorRole.Highlight: "#2f6fd0",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.PlaceholderText: "#80848c",
}


def palette(name: str) -> QPalette:
    pal = QPalette()
    for role, colour in (_DARK if name == "dark" else _LIGHT).items():
        pal.setColor(role, QColor(colour))
    grey = QColor("#7a7d83" if name == "dark" else "#a0a3a8")
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, grey)
    return pal


def apply_theme(app: QApplication, name: str) -> str:
    """Apply "light" or "dark" (anything else → light); returns the name applied."""
    name = name if name in THEMES else "light"
    app.setStyle("Fusion")
    app.setPalette(palette(name))
    qss = paths.resources_dir() / "style.qss"
    try:
        app.setStyleSheet(qss.read_text(encoding="utf-8") if qss.is_file() else "")
    except OSError as e:
        log.warning("%s: cannot read (%s)", qss, e)
    app.setProperty("vitascope_theme", name)
    return name


def current_theme(app: QApplication) -> str:
    return str(app.property("vitascope_theme") or "light")
