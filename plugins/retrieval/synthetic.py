"""Seeded synthetic re-identification / fine-grained data: identities that share a coarse body (shape, colour) and
differ only in small local marks and stripes, seen by cameras that change viewpoint, scale, light, colour cast,
blur, occlusion and background clutter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

BODY_SHAPES = ("ellipse", "capsule", "diamond", "fish", "round", "box")
BODY_COLOURS = ((200, 170, 120), (120, 150, 200), (170, 200, 130), (210, 140, 150), (180, 180, 180),
                (150, 120, 190))
MARK_SHAPES = ("dot", "square", "bar", "ring", "triangle")
MARK_COLOURS = ((30, 30, 30), (240, 240, 240), (220, 50, 40), (40, 60, 200), (240, 200, 30))
MARK_SLOTS = [(u, v) for v in (-0.45, 0.0, 0.45) for u in (-0.55, -0.18, 0.18, 0.55)]  # body coordinates
N_CAMERAS = 3


@dataclass(frozen=True)
class Identity:
    """One individual: a coarse body shared with many others plus its own marks and stripes."""

    body: int
    colour: int
    marks: tuple[tuple[int, int, int], ...]  # (slot, shape, colour)
    stripes: int  # 0-3 stripes across the body
    stripe_colour: int


def make_identities(n: int, seed: int) -> list[Identity]:
    """`n` distinct identities; two identities never share body, colour, marks and stripes all at once."""
    rng = np.random.default_rng(seed)
    out: list[Identity] = []
    seen: set[Identity] = set()
    while len(out) < n:
        slots = rng.choice(len(MARK_SLOTS), size=3, replace=False)
        marks = tuple(sorted((int(s), int(rng.integers(len(MARK_SHAPES))), int(rng.integers(len(MARK_COLOURS))))
                             for s in slots))
        ident = Identity(int(rng.integers(len(BODY_SHAPES))), int(rng.integers(len(BODY_COLOURS))), marks,
                         int(rng.integers(4)), int(rng.integers(len(MARK_COLOURS))))
        if ident not in seen:
            seen.add(ident)
            out.append(ident)
    return out


def _body_mask(shape: str, s: int) -> np.ndarray:
    """A filled body of half-width 0.42 s, half-height 0.26 s centred in an s×s canvas."""
    m = np.zeros((s, s), np.uint8)
    c, a, b = s // 2, int(0.42 * s), int(0.26 * s)
    if shape == "ellipse":
        cv2.ellipse(m, (c, c), (a, b), 0, 0, 360, 255, -1)
    elif shape == "capsule":
        cv2.rectangle(m, (c - a + b, c - b), (c + a - b, c + b), 255, -1)
        cv2.circle(m, (c - a + b, c), b, 255, -1)
        cv2.circle(m, (c + a - b, c), b, 255, -1)
    elif shape == "diamond":
        cv2.fillConvexPoly(m, np.array([[c - a, c], [c, c - b - 4], [c + a, c], [c, c + b + 4]], np.int32), 255)
    elif shape == "fish":
        cv2.ellipse(m, (c - a // 6, c), (a * 5 // 6, b), 0, 0, 360, 255, -1)
        cv2.fillConvexPoly(m, np.array([[c + a // 2, c], [c + a, c - b], [c + a, c + b]], np.int32), 255)
    elif shape == "round":
        cv2.circle(m, (c, c), b + (a - b) // 3, 255, -1)
    else:
        cv2.rectangle(m, (c - a, c - b), (c + a, c + b), 255, -1)
    return m


def _draw_mark(img: np.ndarray, shape: str, centre: tuple[int, int], r: int, colour: tuple[int, int, int]) -> None:
    x, y = centre
    if shape == "dot":
        cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(img, (x - r, y - r), (x + r, y + r), colour, -1)
    elif shape == "bar":
        cv2.rectangle(img, (x - r // 2, y - int(1.6 * r)), (x + r // 2, y + int(1.6 * r)), colour, -1)
    elif shape == "ring":
        cv2.circle(img, (x, y), r, colour, max(1, r // 2), cv2.LINE_AA)
    else:
        cv2.fillConvexPoly(img, np.array([[x, y - r - 1], [x - r - 1, y + r], [x + r + 1, y + r]], np.int32),
                           colour, cv2.LINE_AA)


def render_object(ident: Identity, s: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """The identity drawn canonically on an s×s canvas: (RGB uint8, alpha uint8)."""
    mask = _body_mask(BODY_SHAPES[ident.body], s)
    img = np.zeros((s, s, 3), np.uint8)
    img[mask > 0] = BODY_COLOURS[ident.colour]
    c = s // 2
    if ident.stripes:
        stripe = np.zeros_like(img)
        for k in range(ident.stripes):
            x = int(c + (k - (ident.stripes - 1) / 2) * 0.2 * s)
            cv2.line(stripe, (x + s // 20, c - s // 3), (x - s // 20, c + s // 3),
                     MARK_COLOURS[ident.stripe_colour], max(2, s // 40))
        sel = (mask > 0) & (stripe.sum(axis=2) > 0)
        img[sel] = (0.55 * img[sel] + 0.45 * stripe[sel]).astype(np.uint8)
    a, b = 0.42 * s, 0.26 * s
    for slot, shape, colour in ident.marks:
        u, v = MARK_SLOTS[slot]
        _draw_mark(img, MARK_SHAPES[shape], (int(c + u * a), int(c + v * b)), max(2, s // 18), MARK_COLOURS[colour])
    return img, mask


def _background(rng: np.random.Generator, s: int) -> np.ndarray:
    y, x = np.mgrid[0:s, 0:s].astype(np.float32) / s
    c0, c1 = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    t = (np.cos(rng.uniform(0, np.pi)) * x + np.sin(rng.uniform(0, np.pi)) * y)[..., None]
    bg = (c0 * (1 - t) + c1 * t).astype(np.float32)
    for _ in range(int(rng.integers(3, 9))):  # clutter: lines and blobs of random colour
        col = tuple(float(v) for v in rng.uniform(0, 255, 3))
        p = rng.integers(0, s, 4)
        if rng.random() < 0.5:
            cv2.line(bg, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), col, int(rng.integers(1, 4)))
        else:
            cv2.circle(bg, (int(p[0]), int(p[1])), int(rng.integers(2, s // 6)), col, -1)
    return bg + rng.normal(0, 6, bg.shape).astype(np.float32)


def camera_params(camera: int) -> dict[str, float]:
    """What distinguishes the fixed cameras of the re-ID protocol (each view adds its own jitter)."""
    return [{"gain": 1.0, "cast_r": 1.0, "cast_b": 1.0, "blur": 0.3, "scale": 1.0},
            {"gain": 0.75, "cast_r": 1.15, "cast_b": 0.85, "blur": 0.7, "scale": 0.85},
            {"gain": 1.2, "cast_r": 0.85, "cast_b": 1.15, "blur": 0.5, "scale": 0.95}][camera % N_CAMERAS]


def render_view(ident: Identity, rng: np.random.Generator, camera: int = 0, size: int = 64) -> np.ndarray:
    """One photograph of `ident` by `camera` (RGB uint8, size×size)."""
    cam = camera_params(camera)
    s = 2 * size
    obj, alpha = render_object(ident, s)
    angle = rng.uniform(-35, 35)
    scale = cam["scale"] * rng.uniform(0.8, 1.1)
    m = cv2.getRotationMatrix2D((s / 2, s / 2), angle, scale)
    m[1, 1] *= rng.uniform(0.8, 1.0)  # a little foreshortening
    m[:, 2] += rng.uniform(-0.1, 0.1, 2) * s
    obj = cv2.warpAffine(obj, m, (s, s), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(alpha, m, (s, s), flags=cv2.INTER_LINEAR).astype(np.float32)[..., None] / 255.0
    img = _background(rng, s) * (1 - alpha) + obj.astype(np.float32) * alpha
    if rng.random() < 0.3:  # occluder
        w, h = (rng.uniform(0.15, 0.35, 2) * s).astype(int)
        x, y = rng.integers(0, s - w), rng.integers(0, s - h)
        img[y:y + h, x:x + w] = rng.uniform(30, 220, 3)
    gain = cam["gain"] * rng.uniform(0.85, 1.15)
    img = img * gain * np.array([cam["cast_r"], 1.0, cam["cast_b"]], np.float32) * rng.uniform(0.92, 1.08, 3)
    img = cv2.resize(np.clip(img, 0, 255), (size, size), interpolation=cv2.INTER_AREA)
    sigma = cam["blur"] + rng.uniform(0, 0.4)
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_split(n_ids: int, views: int, seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, size, size, 3) uint8, identity labels, cameras): `views` views of each of `n_ids` identities,
    cameras cycling 0, 1, 2. Different seeds give different identities."""
    idents = make_identities(n_ids, seed)
    rng = np.random.default_rng(seed + 1)
    x = np.zeros((n_ids * views, size, size, 3), np.uint8)
    y = np.repeat(np.arange(n_ids), views)
    cams = np.tile(np.arange(views) % N_CAMERAS, n_ids)
    for i in range(x.shape[0]):
        x[i] = render_view(idents[y[i]], rng, int(cams[i]), size)
    return x, y, cams


def write_market_layout(out: str | Path, n_ids: int, seed: int, size: int = 64, views: int = 6) -> Path:
    """A held-out set on disk in the Market-1501 layout: per identity one query view (camera 1 of the first
    view) and the remaining views in bounding_box_test/. Returns the root."""
    root = Path(out)
    (root / "query").mkdir(parents=True, exist_ok=True)
    (root / "bounding_box_test").mkdir(parents=True, exist_ok=True)
    x, y, cams = make_split(n_ids, views, seed, size)
    for i in range(x.shape[0]):
        first = i % views == 0
        name = f"{y[i] + 1:04d}_c{cams[i] + 1}s1_{i:06d}_00.png"
        folder = root / ("query" if first else "bounding_box_test")
        cv2.imwrite(str(folder / name), cv2.cvtColor(x[i], cv2.COLOR_RGB2BGR))
    return root
