"""Refuse images that cannot hold a readable ECG page before the model sees them: too small, blank, noise (no
spatial structure) or without a paper background. Pages that pass but look unlike ECGs meet the model's OOD score."""

from __future__ import annotations

import cv2
import numpy as np

from app.core.errors import BadInput

MIN_SHORT_SIDE = 200   # px: below this a 12-lead page (25 mm/s, 10 s) has < 1 px per 2 mm of paper
MIN_CONTRAST = 6.0     # gray-level std over the page: below it the page is blank (or one colour)
MIN_NEIGHBOUR_CORR = 0.2  # correlation of horizontally adjacent pixels: ~0 for noise, >= 0.44 on real ECG scans
PAPER_LEVEL = 120      # local background (21 px median at 352 px width) brighter than this is paper
MIN_PAPER = 0.4        # share of the page that is paper: >= 0.72 on every real and rendered ECG measured,
                       # median 0.37 on real photographs
MIN_THIN = 0.5         # share of the ink in thin strokes: >= 0.76 on real ECG pages, >= 0.6 on renders down to
                       # 50 dpi, median 0.45 on real photographs (below 0.5: refused)
REVIEW_THIN = 0.65     # below this the page is screened but flagged uncertain


class NotAnEcgImage(BadInput):
    """An image that cannot be an ECG page; the message says why in one line."""


def _gray(image: np.ndarray) -> np.ndarray:
    """uint8 max-channel gray, the model's own view of the page (coloured grids fade); 16-bit input scaled down."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        hi = float(img.max()) if img.size else 0.0
        img = (img.astype(np.float32) * (255.0 / hi if hi > 255 else 1.0)).clip(0, 255).astype(np.uint8)
    if img.ndim == 3:
        img = np.maximum(np.maximum(img[..., 0], img[..., 1]), img[..., 2]) if img.shape[2] >= 3 else img[..., 0]
    return img


def _neighbour_corr(g: np.ndarray, half: int = 256) -> float:
    """Correlation of each pixel with its right neighbour on a centre crop (≤ 512²) at full resolution: fine detail
    of a scan (1-px traces, grid) keeps it high; white or salt-and-pepper noise drives it to ~0."""
    h, w = g.shape
    c = g[max(0, h // 2 - half):h // 2 + half, max(0, w // 2 - half):w // 2 + half].astype(np.float32)
    a, b = c[:, :-1], c[:, 1:]
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt(float((a * a).sum()) * float((b * b).sum())))
    return float((a * b).sum() / den) if den > 0 else 0.0


def check_ecg_image(image: np.ndarray, source: str = "image") -> float:
    """Raise NotAnEcgImage when `image` (H, W[, C]) is too small, blank, noise, not paper or not strokes to be an
    ECG page; otherwise return its thin-stroke share (below REVIEW_THIN the answer is flagged for review)."""
    img = np.asarray(image)
    if img.ndim < 2 or min(img.shape[:2]) < MIN_SHORT_SIDE:
        shape = "x".join(str(v) for v in img.shape[:2][::-1]) or "empty"
        raise NotAnEcgImage(f"{source}: {shape} px is too small to hold a readable ECG "
                            f"(need at least {MIN_SHORT_SIDE} px on the short side)")
    g = _gray(img)
    if float(cv2.meanStdDev(g)[1][0, 0]) < MIN_CONTRAST:
        raise NotAnEcgImage(f"{source}: the image is blank (almost one uniform colour), not an ECG page")
    if _neighbour_corr(g) < MIN_NEIGHBOUR_CORR:
        raise NotAnEcgImage(f"{source}: the image is noise (no spatial structure), not an ECG page")
    paper = paper_fraction(g)
    if paper < MIN_PAPER:
        raise NotAnEcgImage(f"{source}: no light paper background ({paper:.0%} of the image; an ECG page has "
                            f"{MIN_PAPER:.0%} or more), not an ECG page")
    thin = thin_stroke_share(g)
    if thin < MIN_THIN:
        raise NotAnEcgImage(f"{source}: its dark marks are areas, not thin traces ({thin:.0%} thin; an ECG page "
                            f"has {MIN_THIN:.0%} or more), not an ECG page")
    return thin


def thin_stroke_share(gray: np.ndarray) -> float:
    """Share of the ink (pixels 40 levels darker than their local background, at up to 704 px width) that a 5×5
    opening removes: ECG traces, grid and text are thin strokes; the dark parts of a photograph are areas."""
    h, w = gray.shape
    width = min(704, w)
    small = cv2.resize(gray, (width, max(1, round(width * h / w))), interpolation=cv2.INTER_AREA)
    ink = (small.astype(np.int16) < cv2.medianBlur(small, 31).astype(np.int16) - 40).astype(np.uint8)
    n = int(ink.sum())
    if n == 0:
        return 1.0
    return 1.0 - float(cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)).sum()) / n


def paper_fraction(gray: np.ndarray) -> float:
    """Share of the image whose local background (a 21 px median at 352 px width, so traces and grid lines vanish)
    is light: ECG printouts are mostly paper; photographs of other things mostly are not."""
    h, w = gray.shape
    small = cv2.resize(gray, (352, max(1, round(352 * h / w))), interpolation=cv2.INTER_AREA)
    return float(np.mean(cv2.medianBlur(small, 21) > PAPER_LEVEL))
