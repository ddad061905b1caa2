"""Keeping windows on the screen: clamp a window rectangle to a screen, a page wrapper whose content's minimum size
cannot widen the window, and a label that elides its text (full text in the tooltip)."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication, QResizeEvent, QScreen
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QStyle, QWidget


def clamp_rect(rect: QRect, area: QRect, frame: QSize | None = None) -> QRect:
    """`rect` (client size at a frame position) moved and shrunk so the frame (client + `frame` margins) lies
    within `area`."""
    frame = frame or QSize(0, 0)
    w = max(1, min(rect.width(), area.width() - frame.width()))
    h = max(1, min(rect.height(), area.height() - frame.height()))
    x = min(max(rect.x(), area.x()), area.x() + area.width() - (w + frame.width()))
    y = min(max(rect.y(), area.y()), area.y() + area.height() - (h + frame.height()))
    return QRect(x, y, w, h)


def screen_for(rect: QRect) -> QScreen:
    """The screen holding the centre of `rect`, else the primary screen (a monitor that is gone)."""
    screen = QGuiApplication.screenAt(rect.center()) if rect.isValid() else None
    return screen or QGuiApplication.primaryScreen()


def frame_margins(window: QWidget) -> QSize:
    """Width and height the window manager's frame adds (0 before the window is shown)."""
    outer, inner = window.frameGeometry(), window.geometry()
    return QSize(max(0, outer.width() - inner.width()), max(0, outer.height() - inner.height()))


def keep_on_screen(window: QWidget) -> bool:
    """Move and shrink a normal (not maximized) window so its frame lies within its screen's available area;
    True if it had to change."""
    if window.isMaximized() or window.isFullScreen():
        return False
    frame = frame_margins(window)
    current = QRect(window.pos(), window.size())
    area = screen_for(window.frameGeometry()).availableGeometry()
    fitted = clamp_rect(current, area, frame)
    if fitted == current:
        return False
    window.resize(fitted.size())
    window.move(fitted.topLeft())
    return True


class FitPage(QScrollArea):
    """Holds a page (a plug-in's widget): the page fills the area and gets scroll bars only when the window is
    smaller than the page's minimum size, so no page can force the window wider or taller than the screen.
    Unlike a resizable QScrollArea it ignores height-for-width: wrapped text does not make the page scroll."""

    def __init__(self, page: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidget(page)
        self.setFocusProxy(page)
        page.installEventFilter(self)
        self._fit()

    def page(self) -> QWidget:
        return self.widget()

    def needs_scrolling(self) -> bool:
        hint = self.widget().minimumSizeHint()
        return hint.width() > self.width() or hint.height() > self.height()

    def _fit(self) -> None:
        page = self.widget()
        if page is None:
            return
        hint = page.minimumSizeHint().expandedTo(page.minimumSize())
        room = self.size()
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        w_over, h_over = hint.width() > room.width(), hint.height() > room.height()
        width = room.width() - (bar if h_over else 0)
        height = room.height() - (bar if w_over else 0)
        page.resize(max(hint.width(), width), max(hint.height(), height))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        self._fit()
        super().resizeEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self._fit()
        return super().eventFilter(watched, event)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return self.widget().sizeHint() if self.widget() is not None else super().sizeHint()


class ElidedLabel(QLabel):
    """A one-line label that shortens its text with "…" to the room it gets; the full text is its tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)
        self.setText(text)

    def full_text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:  # noqa: N802 (Qt override)
        self._full = text
        self.setToolTip(text)
        self._elide()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt override)
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = max(0, self.contentsRect().width())
        super().setText(self.fontMetrics().elidedText(self._full, self._mode, room))
