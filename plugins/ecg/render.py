"""Waveform → ECG paper image with OpenCV (25 mm/s, 10 mm/mV at the stated dpi, 1/5 mm grid, calibration pulse),
in the clinical layouts, with optional scan/photo degradation; deterministic per seed and fast enough for training."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from app.core.errors import BadInput

from .types import STANDARD_LEADS, EcgRecord

MM_PER_S = 25.0
MM_PER_MV = 10.0
LAYOUTS = ("3x4+II", "3x4", "6x2", "12x1", "rhythm")
STYLES = ("clean", "scanned", "photographed")
GRIDS = ("red", "pink", "blue", "green", "bw", "none")
# (minor, major) line colours, RGB
GRID_COLORS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "red": ((247, 196, 196), (232, 120, 120)),
    "pink": ((250, 215, 228), (238, 160, 190)),
    "blue": ((200, 218, 245), (130, 165, 225)),
    "green": ((200, 235, 205), (120, 190, 135)),
    "bw": ((215, 215, 215), (160, 160, 160)),
}
GRID_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
GRID_6X2 = (("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6"))
CAL_MM = 8.0         # width of the calibration-pulse column left of each row
WINDOW_S = 10.0      # the displayed span (longer records show their first 10 s)


@dataclass
class Panel:
    """One lead segment on the page: `box` (x0, y0, x1, y1) px, time window [t0, t1) s, zero-mV row `baseline_y`."""

    lead: str
    box: tuple[int, int, int, int]
    t0: float
    t1: float
    x0: float
    baseline_y: float


@dataclass
class LayoutInfo:
    """Geometry of a rendering, in page pixels before any scan/photo distortion (`transform` maps page → image)."""

    layout: str
    style: str
    dpi: float
    px_per_mm: float
    px_per_mv: float
    px_per_s: float
    size: tuple[int, int]                     # (H, W)
    grid_box: tuple[int, int, int, int]       # x0, y0, x1, y1 of the grid area
    panels: list[Panel] = field(default_factory=list)
    cal_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    grid: str = "red"
    header: dict[str, str] = field(default_factory=dict)
    transform: np.ndarray | None = None       # 3x3, page pixel → output pixel (None: identity)


def px_per_mm(dpi: float) -> float:
    return float(dpi) / 25.4


def px_per_mv(dpi: float) -> float:
    """Pixels per millivolt at 10 mm/mV."""
    return MM_PER_MV * px_per_mm(dpi)


def px_per_s(dpi: float) -> float:
    """Pixels per second at 25 mm/s."""
    return MM_PER_S * px_per_mm(dpi)


def _rows(record: EcgRecord, layout: str, dur: float) -> tuple[str, list[list[tuple[str, float, float]]], float]:
    """Effective layout and rows of (lead, t0, t1), plus the row height in mm."""
    has12 = all(name in record.leads for name in STANDARD_LEADS)
    if layout not in LAYOUTS:
        raise BadInput(f"unknown ECG layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if not has12 and layout != "rhythm":
        layout = "rhythm"
    if layout in ("3x4+II", "3x4"):
        col = WINDOW_S / 4
        rows = [[(name, c * col, (c + 1) * col) for c, name in enumerate(r)] for r in GRID_3X4]
        if layout == "3x4+II":
            rows.append([("II", 0.0, WINDOW_S)])
        return layout, rows, 40.0 if layout == "3x4+II" else 45.0
    if layout == "6x2":
        col = WINDOW_S / 2
        return layout, [[(name, c * col, (c + 1) * col) for c, name in enumerate(r)] for r in GRID_6X2], 27.5
    names = STANDARD_LEADS if layout == "12x1" else record.leads
    rows = [[(name, 0.0, WINDOW_S)] for name in names]
    return layout, rows, 20.0 if layout == "12x1" else float(np.clip(160.0 / max(len(rows), 1), 25.0, 40.0))


def _draw_grid(img: np.ndarray, box: tuple[int, int, int, int], gx: float, gy: float, ppmm: float, nx: int,
               ny: int, colors: tuple[tuple[int, int, int], tuple[int, int, int]], paper: np.ndarray) -> None:
    x0, y0, x1, y1 = box
    minor, major = (np.array(c, np.float32) for c in colors)
    a = float(np.clip((ppmm - 1.5) / 2.5, 0.25, 1.0))  # fade the minor grid when it is denser than the pixels
    minor = (a * minor + (1 - a) * paper).astype(np.uint8)
    major = major.astype(np.uint8)
    thick = 2 if ppmm >= 6 else 1
    xs = np.rint(gx + np.arange(nx + 1) * ppmm).astype(int)
    ys = np.rint(gy + np.arange(ny + 1) * ppmm).astype(int)
    for sel, col in ((np.arange(nx + 1) % 5 != 0, minor), (np.arange(nx + 1) % 5 == 0, major)):
        cols = xs[sel]
        cols = cols[(cols >= 0) & (cols < img.shape[1])]
        img[y0:y1 + 1, cols] = col
        if thick == 2 and col is major:
            img[y0:y1 + 1, np.clip(cols + 1, 0, img.shape[1] - 1)] = col
    for sel, col in ((np.arange(ny + 1) % 5 != 0, minor), (np.arange(ny + 1) % 5 == 0, major)):
        rws = ys[sel]
        rws = rws[(rws >= 0) & (rws < img.shape[0])]
        img[rws, x0:x1 + 1] = col
        if thick == 2 and col is major:
            img[np.clip(rws + 1, 0, img.shape[0] - 1), x0:x1 + 1] = col
    # re-draw major verticals over minor horizontals
    cols = xs[np.arange(nx + 1) % 5 == 0]
    img[y0:y1 + 1, cols[(cols >= 0) & (cols < img.shape[1])]] = major


def _default_header(rng: np.random.Generator) -> dict[str, str]:
    h: dict[str, str] = {}
    if rng.random() < 0.6:
        h["ID"] = f"{int(rng.integers(10000, 99999999))}"
    if rng.random() < 0.6:
        h["Date"] = (f"{int(rng.integers(2005, 2025))}-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
                     f" {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}")
    if rng.random() < 0.5:
        h["Filter"] = str(rng.choice(["0.05-150 Hz", "0.05-100 Hz", "0.5-40 Hz", "0.67-35 Hz"]))
    return h


def _text(img: np.ndarray, s: str, org: tuple[float, float], scale: float, color: tuple[int, int, int],
          thick: int) -> None:
    cv2.putText(img, s, (int(org[0]), int(org[1])), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def _polyline(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, color: tuple[int, int, int], thick: int) -> None:
    pts = np.stack([xs, ys], axis=1)
    pts = np.clip(pts, -4000, 20000)
    cv2.polylines(img, [np.rint(pts * 16).astype(np.int32)], False, color, thick, cv2.LINE_AA, 4)


def render_with_layout(record: EcgRecord, layout: str = "3x4+II", style: str = "clean", dpi: float = 100,
                       seed: int = 0, grid: str | None = "red", header: dict[str, str] | None = None
                       ) -> tuple[np.ndarray, LayoutInfo]:
    """The (H, W, 3) uint8 RGB page and its geometry. `grid` None picks a colour per seed; `header` None prints
    the speed/gain line plus a random ID/date per seed (never anything about the class or the heart rate)."""
    if style not in STYLES:
        raise BadInput(f"unknown ECG image style {style!r}; use one of {', '.join(STYLES)}")
    if not (10 <= dpi <= 1200):
        raise BadInput(f"dpi must be within 10..1200, got {dpi}")
    sig = np.asarray(record.signals, np.float32)
    if sig.ndim != 2 or sig.shape[0] != len(record.leads) or sig.shape[1] < 2:
        raise BadInput(f"ECG record must be (n_leads, n_samples) matching its {len(record.leads)} lead names, "
                       f"got {sig.shape}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 17])
    if grid is None:
        grid = str(rng.choice(GRIDS, p=[0.35, 0.2, 0.1, 0.1, 0.15, 0.1]))
    if grid not in GRIDS:
        raise BadInput(f"unknown grid {grid!r}; use one of {', '.join(GRIDS)} or None")
    hdr = _default_header(rng) if header is None else {str(k): str(v) for k, v in header.items()}

    fs = float(record.fs)
    dur = min(sig.shape[1] / fs, WINDOW_S)
    n_show = int(round(dur * fs))
    sig = np.nan_to_num(sig[:, :n_show])
    sig = sig - np.median(sig, axis=1, keepdims=True)
    index = {name: i for i, name in enumerate(record.leads)}
    layout, rows, row_mm = _rows(record, layout, dur)

    ppmm = px_per_mm(dpi)
    pps = MM_PER_S * ppmm
    ppmv = MM_PER_MV * ppmm
    grid_w_mm = CAL_MM + WINDOW_S * MM_PER_S + 2.0
    grid_h_mm = math.ceil(len(rows) * row_mm / 5.0) * 5.0
    margin_l, margin_r, margin_t, margin_b = 7.0, 7.0, 18.0, 7.0
    W = int(math.ceil((margin_l + grid_w_mm + margin_r) * ppmm))
    H = int(math.ceil((margin_t + grid_h_mm + margin_b) * ppmm))
    paper = np.array((255, 255, 255), np.float32)
    img = np.full((H, W, 3), 255, np.uint8)
    gx, gy = margin_l * ppmm, margin_t * ppmm
    nx = int(math.ceil(grid_w_mm))
    ny = int(grid_h_mm)
    gbox = (int(round(gx)), int(round(gy)), int(round(gx + nx * ppmm)), int(round(gy + ny * ppmm)))
    if grid != "none":
        _draw_grid(img, gbox, gx, gy, ppmm, nx, ny, GRID_COLORS[grid], paper)

    trace = [(0, 0, 0), (20, 20, 60), (40, 40, 40), (10, 30, 90)][int(rng.integers(0, 4))]
    if grid == "bw":
        trace = (0, 0, 0)
    thick = max(1, int(round(0.28 * ppmm)))
    fscale = 0.12 * ppmm
    fthick = max(1, int(round(ppmm / 4)))
    info = LayoutInfo(layout=layout, style=style, dpi=float(dpi), px_per_mm=ppmm, px_per_mv=ppmv, px_per_s=pps,
                      size=(H, W), grid_box=gbox, grid=grid, header=hdr)
    sig_x0 = gx + CAL_MM * ppmm
    for r, row in enumerate(rows):
        base_y = gy + (r + 0.6) * row_mm * ppmm
        # 1 mV × 0.2 s calibration pulse
        cx = gx + 1.0 * ppmm
        cal = np.array([[cx, base_y], [cx + 1 * ppmm, base_y], [cx + 1 * ppmm, base_y - ppmv],
                        [cx + 6 * ppmm, base_y - ppmv], [cx + 6 * ppmm, base_y], [cx + 7 * ppmm, base_y]])
        _polyline(img, cal[:, 0], cal[:, 1], trace, thick)
        info.cal_boxes.append((int(round(cx + ppmm)), int(round(base_y - ppmv)), int(round(cx + 6 * ppmm)),
                               int(round(base_y))))
        for name, t0, t1 in row:
            px0 = sig_x0 + t0 * pps
            box = (int(round(px0)), int(round(gy + r * row_mm * ppmm)), int(round(sig_x0 + t1 * pps)),
                   int(round(gy + (r + 1) * row_mm * ppmm)))
            info.panels.append(Panel(name, box, t0, t1, px0, base_y))
            i0, i1 = int(round(t0 * fs)), min(int(round(t1 * fs)), n_show)
            if name in index and i1 - i0 >= 2:
                v = sig[index[name], i0:i1]
                xs = px0 + (np.arange(i0, i1) / fs - t0) * pps
                _polyline(img, xs, base_y - v * ppmv, trace, thick)
            _text(img, name, (px0 + 1.0 * ppmm, base_y - 0.42 * row_mm * ppmm), fscale, trace, fthick)
            if t0 > 0:  # lead-change tick
                cv2.line(img, (int(round(px0)), int(round(base_y - 2.5 * ppmm))),
                         (int(round(px0)), int(round(base_y + 2.5 * ppmm))), trace, thick, cv2.LINE_AA)
    line = f"{MM_PER_S:g} mm/s   {MM_PER_MV:g} mm/mV"
    if "Filter" in hdr:
        line += f"   {hdr['Filter']}"
    _text(img, line, (gx, H - 1.5 * ppmm), fscale * 0.9, (30, 30, 30), fthick)
    extra = "   ".join(f"{k}: {v}" for k, v in hdr.items() if k != "Filter")
    if extra:
        _text(img, extra, (gx, gy - 6.0 * ppmm), fscale * 1.1, (20, 20, 20), fthick)
    if grid == "bw":
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if style == "scanned":
        img = _scanned(img, rng, info)
    elif style == "photographed":
        img = _photographed(img, rng, info)
    return img, info


def render(record: EcgRecord, layout: str = "3x4+II", style: str = "clean", dpi: float = 100, seed: int = 0,
           grid: str | None = "red", header: dict[str, str] | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 RGB ECG page (see `render_with_layout`)."""
    return render_with_layout(record, layout, style, dpi, seed, grid, header)[0]


# --- degradations ---------------------------------------------------------------------------------------------

def _noise(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Additive Gaussian sensor noise drawn at half resolution (2×2 grain; 4× cheaper than full resolution)."""
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    h, w = img.shape[:2]
    n = np.empty(((h + 1) // 2, (w + 1) // 2, img.shape[2]), np.int16)
    cv2.randn(n, 0, sigma)
    n = cv2.resize(n, (w, h), interpolation=cv2.INTER_NEAREST)
    return cv2.add(img, n, dtype=cv2.CV_8U)


def _gain(img: np.ndarray, field: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """img × field(y, x) × rgb, in uint8 arithmetic (field up to ~1.25)."""
    f = np.clip(field * 200.0, 0, 255).astype(np.uint8)
    f3 = cv2.merge([cv2.convertScaleAbs(f, alpha=float(c)) for c in rgb])
    return cv2.multiply(img, f3, scale=1 / 200.0, dtype=cv2.CV_8U)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def _field(shape: tuple[int, int], rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """Smooth multiplicative illumination field in [lo, hi], computed small and upsampled."""
    h, w = shape
    sh, sw = 24, 32
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    xx, yy = xx / (sw - 1) - 0.5, yy / (sh - 1) - 0.5
    f = rng.normal(0, 1) * xx + rng.normal(0, 1) * yy
    cx, cy = rng.uniform(-0.4, 0.4, 2)
    f -= rng.uniform(0.5, 2.0) * ((xx - cx) ** 2 + (yy - cy) ** 2)
    f = (f - f.min()) / max(float(np.ptp(f)), 1e-6)
    f = lo + (hi - lo) * f
    return cv2.resize(f.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def _scanned(img: np.ndarray, rng: np.random.Generator, info: LayoutInfo) -> np.ndarray:
    h, w = img.shape[:2]
    tone = np.array([rng.uniform(235, 255), rng.uniform(230, 252), rng.uniform(215, 245)], np.float32) / 255
    img = cv2.multiply(img, (float(tone[0]), float(tone[1]), float(tone[2]), 0.0), dtype=cv2.CV_8U)
    ang = rng.uniform(-2.0, 2.0)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
    m[:, 2] += rng.uniform(-0.01, 0.01, 2) * (w, h)
    border = tuple(int(c * 255) for c in tone)
    img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    info.transform = np.vstack([m, [0, 0, 1]])
    n_creases = int(rng.integers(0, 3))
    if n_creases:  # creases: soft dark bands across the page
        band = np.zeros((h, w), np.float32)
        for _ in range(n_creases):
            if rng.random() < 0.5:
                x = int(rng.uniform(0.2, 0.8) * w)
                p0, p1 = (x, 0), (x + int(rng.uniform(-0.05, 0.05) * w), h)
            else:
                y = int(rng.uniform(0.2, 0.8) * h)
                p0, p1 = (0, y), (w, y + int(rng.uniform(-0.05, 0.05) * h))
            cv2.line(band, p0, p1, float(rng.uniform(0.05, 0.2)), max(1, w // 300))
        band = cv2.GaussianBlur(band, (0, 0), max(1.0, w / 400)) * 3.0
        img = _gain(img, 1 - np.clip(band, 0, 0.3), np.ones(3))
    s = rng.uniform(0.3, 0.9)
    img = cv2.GaussianBlur(img, (0, 0), s)
    img = _noise(img, rng, rng.uniform(2.0, 6.0))
    return _jpeg(img, int(rng.integers(55, 93)))


def _photographed(img: np.ndarray, rng: np.random.Generator, info: LayoutInfo) -> np.ndarray:
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    j = rng.uniform(0.02, 0.09, (4, 2)) * (w, h)
    sign = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    dst = (src + sign * j).astype(np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    bg = tuple(int(c) for c in rng.uniform(30, 150, 3))
    img = cv2.warpPerspective(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                              borderValue=bg)
    info.transform = m
    f = _field((h, w), rng, rng.uniform(0.45, 0.8), rng.uniform(0.95, 1.1))
    if rng.random() < 0.6:  # a soft shadow over part of the page
        sh = np.ones((24, 32), np.float32)
        a, b = rng.uniform(-1, 1, 2)
        yy, xx = np.mgrid[0:24, 0:32]
        sh[(xx / 31 - 0.5) * a + (yy / 23 - 0.5) * b > rng.uniform(-0.2, 0.3)] = rng.uniform(0.55, 0.85)
        sh = cv2.resize(cv2.GaussianBlur(sh, (0, 0), 1.5), (w, h), interpolation=cv2.INTER_LINEAR)
        f *= sh
    temp = np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.8, 1.08)], np.float32)
    img = _gain(img, f, temp)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 1.6))
    img = _noise(img, rng, rng.uniform(4.0, 10.0))
    return _jpeg(img, int(rng.integers(35, 81)))
