"""CmcPlot: the CMC curve of an evaluation (rank 1..20, mAP in the title) drawn with QPainter; it takes keyboard
focus, and Left/Right/Home/End move a marker that reads out the value at a rank."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QKeyEvent, QPainter, QPainterPath, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

MAX_RANK = 20
CURVE = QColor("#2e86c1")
MARKER = QColor("#d35400")


class CmcPlot(QWidget):
    """`set_result(curve, map_value, caption)` shows CMC ranks 1..MAX_RANK of `curve`; `values` holds them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: list[float] = []
        self.map: float | None = None
        self.caption = ""
        self.marker = 0  # index into values (rank - 1)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(240, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("CMC curve")
        self._describe()

    def set_result(self, curve: Sequence[float], map_value: float, caption: str = "") -> None:
        self.values = [float(v) for v in list(curve)[:MAX_RANK]]
        self.map = float(map_value)
        self.caption = caption
        self.marker = 0
        self._describe()
        self.update()

    def clear(self) -> None:
        self.values, self.map, self.caption = [], None, ""
        self._describe()
        self.update()

    @property
    def title(self) -> str:
        if self.map is None:
            return "CMC curve — evaluate a labelled folder to see it"
        return f"CMC · mAP {self.map:.3f}" + (f" · {self.caption}" if self.caption else "")

    def _describe(self) -> None:
        if not self.values:
            text = self.title
        else:
            picks = [k for k in (1, 5, 10, 20) if k <= len(self.values)]
            text = f"{self.title}. " + ", ".join(f"rank {k}: {self.values[k - 1]:.3f}" for k in picks)
        self.setAccessibleDescription(text)
        self.setToolTip(text + ("\n←/→ move the marker" if self.values else ""))

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        n = len(self.values)
        moves = {Qt.Key.Key_Left: self.marker - 1, Qt.Key.Key_Right: self.marker + 1, Qt.Key.Key_Home: 0,
                 Qt.Key.Key_End: n - 1}
        if n and e.key() in moves:
            self.marker = max(0, min(n - 1, moves[e.key()]))
            self.update()
            return
        super().keyPressEvent(e)

    # drawing -----------------------------------------------------------------------------------------------
    def _plot_rect(self) -> QRectF:
        fm = self.fontMetrics()
        left = fm.horizontalAdvance("0.00") + 10
        top = fm.height() + 8
        return QRectF(left, top, max(10, self.width() - left - 12), max(10, self.height() - top - 2 * fm.height() - 8))

    def _point(self, r: QRectF, rank: int, v: float) -> QPointF:
        x = r.left() + (rank - 1) / (MAX_RANK - 1) * r.width()
        return QPointF(x, r.bottom() - max(0.0, min(1.0, v)) * r.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        text, mid = pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Mid)
        p.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        r = self._plot_rect()
        fm = self.fontMetrics()
        bold = QFont(self.font())
        bold.setBold(True)
        p.setFont(bold)
        p.setPen(text)
        p.drawText(QRectF(4, 2, self.width() - 8, fm.height() + 4), Qt.AlignmentFlag.AlignHCenter,
                   QFontMetrics(bold).elidedText(self.title, Qt.TextElideMode.ElideRight, self.width() - 8))
        p.setFont(self.font())
        for v in (0.0, 0.25, 0.5, 0.75, 1.0):  # y grid and labels
            y = r.bottom() - v * r.height()
            p.setPen(QPen(mid, 1, Qt.PenStyle.DotLine))
            p.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
            p.setPen(text)
            p.drawText(QRectF(0, y - fm.height() / 2, r.left() - 4, fm.height()), Qt.AlignmentFlag.AlignRight,
                       f"{v:.2f}")
        for k in (1, 5, 10, 15, 20):  # x ticks
            x = self._point(r, k, 0).x()
            p.drawLine(QPointF(x, r.bottom()), QPointF(x, r.bottom() + 3))
            p.drawText(QRectF(x - 20, r.bottom() + 3, 40, fm.height()), Qt.AlignmentFlag.AlignHCenter, str(k))
        p.drawText(QRectF(r.left(), r.bottom() + fm.height() + 2, r.width(), fm.height()),
                   Qt.AlignmentFlag.AlignHCenter, "rank")
        p.setPen(QPen(text, 1))
        p.drawRect(r)
        if self.values:
            path = QPainterPath(self._point(r, 1, self.values[0]))
            for i, v in enumerate(self.values[1:], start=2):
                path.lineTo(self._point(r, i, v))
            p.setPen(QPen(CURVE, 2))
            p.drawPath(path)
            p.setBrush(CURVE)
            for i, v in enumerate(self.values, start=1):
                p.drawEllipse(self._point(r, i, v), 2.5, 2.5)
            if self.hasFocus():
                self._draw_marker(p, r, fm.height())
        if self.hasFocus():
            p.setPen(QPen(pal.color(QPalette.ColorRole.Highlight), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))
        p.end()

    def _draw_marker(self, p: QPainter, r: QRectF, line: int) -> None:
        rank, v = self.marker + 1, self.values[self.marker]
        pt = self._point(r, rank, v)
        p.setPen(QPen(MARKER, 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(pt.x(), r.top()), QPointF(pt.x(), r.bottom()))
        label = f"rank {rank}: {v:.3f}"
        w = self.fontMetrics().horizontalAdvance(label) + 8
        x = min(max(r.left() + 2, pt.x() + 4), r.right() - w)
        p.fillRect(QRectF(x, r.bottom() - line - 6, w, line + 4), self.palette().color(QPalette.ColorRole.Base))
        p.setPen(MARKER)
        p.drawText(QRectF(x, r.bottom() - line - 6, w, line + 4), Qt.AlignmentFlag.AlignCenter, label)
