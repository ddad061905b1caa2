"""The ECG viewer: a zoomable, pannable QGraphicsView that draws scans area-downsampled to the screen scale (no
moiré from a printed grid), with an optional attention heat-map overlay."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage, QKeyEvent, QPainter, QPixmap, QResizeEvent, QTransform, QWheelEvent
from PySide6.QtWidgets import QFrame, QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

MAX_ZOOM = 16.0     # screen pixels per image pixel
STEP = 1.25         # one key press / one wheel notch


def _qimage(arr: np.ndarray) -> QImage:
    """A QImage owning a copy of an (H, W, 3) RGB or (H, W, 4) RGBA uint8 array."""
    a = np.ascontiguousarray(arr)
    h, w = a.shape[:2]
    fmt = QImage.Format.Format_RGBA8888 if a.shape[2] == 4 else QImage.Format.Format_RGB888
    return QImage(a.data, w, h, a.strides[0], fmt).copy()


def heat_rgba(heat: np.ndarray) -> np.ndarray:
    """An attention map (h, w) in [0, 1] as a warm, partly transparent RGBA image."""
    heat = np.clip(np.nan_to_num(np.asarray(heat, np.float32)), 0, 1)
    rgba = np.zeros(heat.shape + (4,), np.uint8)
    rgba[..., 0] = np.clip(3 * heat, 0, 1) * 255
    rgba[..., 1] = np.clip(3 * heat - 1, 0, 1) * 255
    rgba[..., 2] = np.clip(3 * heat - 2, 0, 1) * 255
    rgba[..., 3] = heat * 150
    return rgba


class EcgPreview(QGraphicsView):
    """Wheel or +/- to zoom (about the pointer), 0 to fit the window, 1 for one image pixel per screen pixel,
    drag or arrow keys to pan. When zoomed out, the drawn pixmap is the image resampled by pixel-area averaging to
    the on-screen size, so fine lines and the paper grid do not alias."""

    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.SmoothPixmapTransform | QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setBackgroundBrush(self.palette().window())
        self.setMinimumSize(180, 100)
        self.setAccessibleName("ECG preview")
        self.setAccessibleDescription("Zoom with the wheel or + and -, 0 fits the window, 1 shows actual pixels, "
                                      "drag or arrow keys pan")
        self.setToolTip("Wheel or +/− zoom · 0 fit · 1 actual pixels · drag to pan")
        self._pix = QGraphicsPixmapItem()
        self._pix.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._heat = QGraphicsPixmapItem()
        self._heat.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._heat.setZValue(1)
        self._heat.setVisible(False)
        self.scene().addItem(self._pix)
        self.scene().addItem(self._heat)
        self.image: np.ndarray | None = None
        self.heat_image: np.ndarray | None = None   # RGBA overlay as drawn
        self._full: QPixmap | None = None
        self._drawn_size: tuple[int, int] | None = None  # (w, h) of the pixmap now on screen
        self._fit = True

    # content -------------------------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray | None) -> None:
        """Show an (H, W, 3) uint8 RGB image (or grey (H, W)), fitted to the window."""
        if image is None:
            self.image, self._full = None, None
            self._pix.setPixmap(QPixmap())
            self.set_heatmap(None)
            return
        img = np.asarray(image)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.dtype != np.uint8:
            img = np.clip(np.nan_to_num(img.astype(np.float32)), 0, 255).astype(np.uint8)
        self.image = np.ascontiguousarray(img[..., :3])
        self._full = QPixmap.fromImage(_qimage(self.image))
        h, w = self.image.shape[:2]
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        self._drawn_size = None
        self.fit()

    def set_heatmap(self, heat: np.ndarray | None, box: tuple[float, float, float, float] | None = None) -> None:
        """The attention map (h, w) in [0, 1] over `box` (x0, y0, x1, y1) of the image (all of it when None)."""
        if heat is None or self.image is None:
            self.heat_image = None
            self._heat.setPixmap(QPixmap())
            self._heat.setVisible(False)
            return
        self.heat_image = heat_rgba(heat)
        h, w = self.image.shape[:2]
        x0, y0, x1, y1 = box if box is not None else (0, 0, w, h)
        hh, hw = self.heat_image.shape[:2]
        self._heat.setPixmap(QPixmap.fromImage(_qimage(self.heat_image)))
        self._heat.setTransform(QTransform.fromScale((x1 - x0) / hw, (y1 - y0) / hh))
        self._heat.setPos(x0, y0)

    def set_heat_visible(self, on: bool) -> None:
        self._heat.setVisible(bool(on) and self.heat_image is not None)

    @property
    def heat_visible(self) -> bool:
        return self._heat.isVisible()

    # zoom ----------------------------------------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return float(self.transform().m11())

    @property
    def drawn_size(self) -> tuple[int, int] | None:
        """Size (w, h) of the pixmap drawn now: the image resampled to the screen scale when zoomed out."""
        return self._drawn_size

    def fit(self) -> None:
        """Fit the whole image in the window (and keep it fitted on resize)."""
        self._fit = True
        if self.image is not None:
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._zoomed()

    def actual_pixels(self) -> None:
        self.set_zoom(1.0)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def set_zoom(self, zoom: float) -> None:
        if self.image is None:
            return
        zoom = float(np.clip(zoom, self._fit_zoom() * 0.5, MAX_ZOOM))
        self._fit = False
        self.setTransform(QTransform.fromScale(zoom, zoom))
        self._zoomed()

    def _fit_zoom(self) -> float:
        if self.image is None:
            return 1.0
        h, w = self.image.shape[:2]
        vp = self.viewport().size()
        return max(1e-3, min(vp.width() / w, vp.height() / h))

    def _zoomed(self) -> None:
        self._update_level()
        self.zoom_changed.emit(self.zoom)

    def _update_level(self) -> None:
        """Draw the full image when zoomed in, an area-averaged copy at the screen's scale when zoomed out."""
        if self.image is None or self._full is None:
            return
        h, w = self.image.shape[:2]
        s = self.zoom * self.devicePixelRatioF()
        if s >= 0.999:
            size = (w, h)
            if self._drawn_size != size:
                self._pix.setPixmap(self._full)
                self._pix.setTransform(QTransform())
        else:
            size = (max(1, round(w * s)), max(1, round(h * s)))
            if self._drawn_size != size:
                small = cv2.resize(self.image, size, interpolation=cv2.INTER_AREA)
                self._pix.setPixmap(QPixmap.fromImage(_qimage(small)))
                self._pix.setTransform(QTransform.fromScale(w / size[0], h / size[1]))
        self._drawn_size = size

    # events --------------------------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps and self.image is not None:
            self.zoom_by(STEP ** steps)
            event.accept()
            return
        super().wheelEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key, text = event.key(), event.text()
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal) or text == "+":
            self.zoom_by(STEP)
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore) or text == "-":
            self.zoom_by(1 / STEP)
        elif key == Qt.Key.Key_0:
            self.fit()
        elif key == Qt.Key.Key_1:
            self.actual_pixels()
        else:
            super().keyPressEvent(event)  # arrows scroll (pan) when zoomed in
            return
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit:
            self.fit()
