"""Deterministic synthetic shapes (circle, square, triangle, cross; bright, random colour) on darker noisy
gradient backgrounds: the data of the built-in demo model. numpy + cv2 only; images are RGB uint8, datasets
NCHW float32 in [-1, 1]."""

from __future__ import annotations

import cv2
import numpy as np

LABELS = ("circle", "square", "triangle", "cross")
SIZE = 64
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
HELDOUT_SEED = 20241121  # held-out data comes from this seed, never used for training
_SUB = 4  # supersampling factor for smooth edges


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dark-to-mid linear gradient (base colour 0..120 per channel, ±50 across the image) at a random angle,
    (size, size, 3) float32 in [0, 255]."""
    c0 = rng.uniform(0, 120, 3)
    c1 = np.clip(c0 + rng.uniform(-50, 50, 3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
    t = np.clip(t, 0, 1)[..., None]
    return ((1 - t) * c0 + t * c1).astype(np.float32)


def _contrasting_colour(rng: np.random.Generator, bg_mean: np.ndarray) -> np.ndarray:
    """A random bright colour (150..255 per channel) at least 100 levels (Euclidean, RGB) from the background's
    mean colour. Shapes are always brighter than their background: with both polarities a tiny ViT sits at
    chance for thousands of steps (it has no ReLU before attention to build polarity-invariant edges)."""
    for _ in range(50):
        c = rng.uniform(150, 255, 3)
        if np.linalg.norm(c - bg_mean) >= 100:
            return c
    return np.full(3, 255.0)


def _polygon(label: int, r: float, angle: float) -> list[np.ndarray]:
    """Outlines (unit: pixels, centred at 0) of the shape with circumradius-like size r, rotated by angle."""
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if label == 1:  # square, half-side r / sqrt(2) * 1.15 so its area is close to the circle's
        h = r * 0.85
        pts = [np.array([[-h, -h], [h, -h], [h, h], [-h, h]])]
    elif label == 2:  # equilateral triangle with circumradius r * 1.2
        a = np.deg2rad([90, 210, 330])
        pts = [1.2 * r * np.stack([np.cos(a), np.sin(a)], axis=1)]
    else:  # cross: two bars of half-length r, half-width r * 0.28
        w = r * 0.28
        pts = [np.array([[-r, -w], [r, -w], [r, w], [-r, w]]), np.array([[-w, -r], [w, -r], [w, r], [-w, r]])]
    return [p @ rot.T for p in pts]


def _mask(label: int, size: int, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Anti-aliased coverage mask (size, size) float32 in [0, 1], rendered at _SUB× and area-downsampled."""
    big = np.zeros((size * _SUB, size * _SUB), np.uint8)
    centre = np.array([cx, cy]) * _SUB
    if label == 0:
        cv2.circle(big, (int(round(centre[0])), int(round(centre[1]))), int(round(r * _SUB)), 255, -1)
    else:
        for p in _polygon(label, r, angle):  # one call per part: fillPoly would XOR the cross's overlap
            cv2.fillConvexPoly(big, np.round(p * _SUB + centre).astype(np.int32), 255)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def render_shape(rng: np.random.Generator, label: int, size: int = SIZE) -> np.ndarray:
    """One RGB (size, size, 3) uint8 image of LABELS[label] with random size, position, rotation, colours,
    background gradient, blur and noise. Deterministic given the generator's state."""
    if not 0 <= label < len(LABELS):
        raise ValueError(f"label must be in 0..{len(LABELS) - 1}, got {label}")
    bg = _background(rng, size)
    colour = _contrasting_colour(rng, bg.reshape(-1, 3).mean(axis=0))
    r = rng.uniform(0.16, 0.36) * size
    margin = r * 0.9
    cx, cy = rng.uniform(margin, size - margin, 2)
    angle = rng.uniform(0, 2 * np.pi)
    m = _mask(label, size, cx, cy, r, angle)[..., None]
    img = bg * (1 - m) + colour.astype(np.float32) * m
    sigma = rng.uniform(0.0, 0.8)
    if sigma > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = img + rng.normal(0.0, rng.uniform(0.0, 12.0), img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def to_input(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB → (N, 3, H, W) float32, (x / 255 - mean) / std, i.e. [-1, 1]."""
    x = images.astype(np.float32) / 255.0
    x = (x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def make_images(seed: int | np.random.SeedSequence, n: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """n images (N, H, W, 3) uint8 and their int64 labels, balanced over the classes, deterministic."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(LABELS)).astype(np.int64)
    images = np.empty((n, size, size, 3), np.uint8)
    for i, lab in enumerate(labels):
        images[i] = render_shape(rng, int(lab), size)
    return images, labels


def make_dataset(seed: int, n_train: int = 8000, n_val: int = 1000,
                 size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): NCHW float32 in [-1, 1] and int64 labels. Train and val come from
    independent child streams of `seed`, so val does not change with n_train."""
    s_train, s_val = np.random.SeedSequence(seed).spawn(2)
    tr_img, y_train = make_images(s_train, n_train, size)
    va_img, y_val = make_images(s_val, n_val, size)
    return to_input(tr_img), y_train, to_input(va_img), y_val


def make_heldout(n: int = 2000, seed: int = HELDOUT_SEED,
                 size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Held-out test data in the same 4-tuple form (empty train part), from a seed never used for training."""
    return make_dataset(seed, 0, n, size)
