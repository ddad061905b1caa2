"""Light and dark themes: the Fusion style with a matching palette, plus `resources/style.qss` if present; pyqtgraph
plots (new ones, and open ones still on the previous theme's colours) follow the theme."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleFactory, QStyleOption, QWidget

from app.core import paths

log = logging.getLogger(__name__)
THEMES = ("light", "dark")

# palette colours per role: (light, dark)
_COLOURS = {
    QPalette.ColorRole.Window: ("#f3f4f6", "#2b2d31"),
    QPalette.ColorRole.WindowText: ("#1d1f23", "#e6e6e6"),
    QPalette.ColorRole.Base: ("#ffffff", "#1f2023"),
    QPalette.ColorRole.AlternateBase: ("#f0f2f5", "#2f3136"),
    QPalette.ColorRole.ToolTipBase: ("#ffffe1", "#3a3d42"),
    QPalette.ColorRole.ToolTipText: ("#1d1f23", "#f0f0f0"),
    QPalette.ColorRole.Text: ("#1d1f23", "#e6e6e6"),
    QPalette.ColorRole.Button: ("#e9ebef", "#35373c"),
    QPalette.ColorRole.ButtonText: ("#1d1f23", "#e6e6e6"),
    QPalette.ColorRole.BrightText: ("#c0392b", "#ff6b6b"),
    QPalette.ColorRole.Link: ("#1f5fbf", "#6cb4ff"),
    QPalette.ColorRole.Highlight: ("#2f6fd0", "#3d7edb"),
    QPalette.ColorRole.HighlightedText: ("#ffffff", "#ffffff"),
    QPalette.ColorRole.PlaceholderText: ("#5b5f66", "#a9adb3"),
}


# plot background and foreground (axes, text) per theme
PLOT_COLOURS = {"light": ("#ffffff", "#3a3d42"), "dark": ("#1f2023", "#c8cacd")}
_PG_DEFAULT = ("k", "d")  # pyqtgraph's own defaults: black background, grey axes


class FocusStyle(QProxyStyle):
    """Fusion with a keyboard focus that can be seen: a 2-px outline in the highlight colour on the focused button,
    tab, check box or current item (Fusion's own is a faint tint)."""

    _OUTLINED = (QStyle.PrimitiveElement.PE_PanelButtonCommand, QStyle.PrimitiveElement.PE_FrameFocusRect)

    def drawPrimitive(self, element: QStyle.PrimitiveElement, option: QStyleOption, painter: QPainter,  # noqa: N802
                      widget: QWidget | None = None) -> None:
        super().drawPrimitive(element, option, painter, widget)
        state = option.state
        if element not in self._OUTLINED or not state & QStyle.StateFlag.State_HasFocus:
            return
        if element == QStyle.PrimitiveElement.PE_PanelButtonCommand and \
                not state & QStyle.StateFlag.State_KeyboardFocusChange:
            return  # a click gives a button focus too: outline it only when the keyboard moved there
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(option.palette.color(QPalette.ColorRole.Highlight), 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(option.rect).adjusted(1, 1, -1, -1), 3, 3)
        painter.restore()


    def drawControl(self, element: QStyle.ControlElement, option: QStyleOption, painter: QPainter,  # noqa: N802
                    widget: QWidget | None = None) -> None:
        super().drawControl(element, option, painter, widget)
        if element == QStyle.ControlElement.CE_TabBarTab and option.state & QStyle.StateFlag.State_HasFocus:
            self.drawPrimitive(QStyle.PrimitiveElement.PE_FrameFocusRect, option, painter, widget)


_styles: list[Any] = []  # the app's style must outlive the call that set it


def palette(name: str) -> QPalette:
    pal = QPalette()
    for role, (light, dark) in _COLOURS.items():
        pal.setColor(role, QColor(dark if name == "dark" else light))
    grey = QColor("#7a7d83" if name == "dark" else "#a0a3a8")
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, grey)
    return pal


def apply_theme(app: QApplication, name: str) -> str:
    """Apply "light" or "dark" (anything else → light); returns the name applied."""
    name = name if name in THEMES else "light"
    if not isinstance(app.style(), FocusStyle):
        style = FocusStyle(QStyleFactory.create("Fusion"))
        _styles.append(style)
        app.setStyle(style)
    app.setPalette(palette(name))
    qss = paths.resources_dir() / "style.qss"
    try:
        app.setStyleSheet(qss.read_text(encoding="utf-8") if qss.is_file() else "")
    except OSError as e:
        log.warning("%s: cannot read (%s)", qss, e)
    previous = current_theme(app) if app.property("vitascope_theme") else None
    app.setProperty("vitascope_theme", name)
    style_plots(name, previous)
    return name


def _colour_name(value: object) -> str:
    import pyqtgraph as pg

    try:
        return pg.mkColor(value).name()
    except Exception:
        return ""


def style_plots(name: str, previous: str | None = None) -> int:
    """Make pyqtgraph's default colours the theme's, and restyle open PlotWidgets whose background is still
    pyqtgraph's default or the previous theme's (a plug-in's own choice is kept); returns how many changed."""
    import pyqtgraph as pg

    bg, fg = PLOT_COLOURS.get(name, PLOT_COLOURS["light"])
    pg.setConfigOptions(background=bg, foreground=fg)
    ours = {_colour_name(c) for c in (_PG_DEFAULT[0], *(PLOT_COLOURS[previous][:1] if previous else ()))}
    ours |= {_colour_name(c[0]) for c in PLOT_COLOURS.values()}
    changed = 0
    for widget in QApplication.allWidgets():
        if not isinstance(widget, pg.PlotWidget):
            continue
        brush = widget.backgroundBrush()
        if brush.style() != Qt.BrushStyle.NoBrush and brush.color().name() not in ours:
            continue
        widget.setBackground(bg)
        item = widget.getPlotItem()
        for axis in ("left", "bottom", "right", "top"):
            ax = item.getAxis(axis)
            ax.setPen(fg)
            ax.setTextPen(fg)
        if item.titleLabel is not None and item.titleLabel.text:
            item.titleLabel.setText(item.titleLabel.text, color=fg)
        changed += 1
    return changed


def current_theme(app: QApplication) -> str:
    return str(app.property("vitascope_theme") or "light")
