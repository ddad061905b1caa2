"""Simulated specimens as complex transmittances, selectable by name: resolution/patterned targets (bars, grids, dots,
Siemens stars) and biological-like phase objects (cells, clusters, fibres, beads, red blood cells, a point)."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

TARGET_KINDS = ("usaf", "grid", "dots", "siemens")
BIO_KINDS = ("cells", "cluster", "fibres", "beads", "rbc")
TRAIN_KINDS = ("usaf", "grid", "dots", "cells", "cluster", "fibres")
HELDOUT_KINDS = ("siemens", "beads", "rbc")  # kept out of training so held-out sets test generalisation
ALL_KINDS = TARGET_KINDS + BIO_KINDS + ("point",)

Grid = tuple[np.ndarray, np.ndarray, float]  # (y column (H,1), x row (1,W), pixel) in metres, centred on 0


def _cov(d: np.ndarray, px: float) -> np.ndarray:
    """Area coverage of a pixel from the signed distance to an edge (negative inside), 1-pixel linear ramp."""
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _rot(y: np.ndarray, x: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = math.cos(a), math.sin(a)
    return c * y - s * x, s * y + c * x


def _binary_contrast(rng: np.random.Generator, cov: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Coverage map → (amplitude, phase) of a chrome (amplitude), etched (phase) or mixed target, either polarity."""
    if rng.random() < 0.5:
        cov = 1.0 - cov
    style = rng.choice(["amplitude", "phase", "mixed"], p=[0.4, 0.4, 0.2])
    a_in = rng.uniform(0.05, 0.5) if style != "phase" else 1.0
    p_in = rng.uniform(0.4, 2.5) * rng.choice([-1, 1]) if style != "amplitude" else 0.0
    amp = 1.0 - cov * (1.0 - a_in)
    return amp.astype(np.float32), (cov * p_in).astype(np.float32)


def _usaf(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    y, x, px = g
    h, w = y.shape[0], x.shape[1]
    cov = np.zeros((h, w), np.float32)
    ext = max(h, w) * px
    pos_y = -ext / 2
    while pos_y < ext / 2:  # rows of elements of one bar width each, shrinking across the frame
        bw = rng.uniform(max(1.0e-6, 1.6 * px), 8e-6)
        pos_x = -ext / 2 + rng.uniform(0, 4 * bw)
        while pos_x < ext / 2:
            for orient in (0, 1):
                L = 5 * bw
                cy, cx = pos_y + 2.5 * bw, pos_x + 2.5 * bw
                ys = slice(max(0, int((cy - L) / px + h / 2)), min(h, int((cy + L) / px + h / 2) + 1))
                xs = slice(max(0, int((cx - L) / px + w / 2)), min(w, int((cx + L) / px + w / 2) + 1))
                if ys.start >= ys.stop or xs.start >= xs.stop:
                    pos_x += 6 * bw
                    continue
                ly, lx = y[ys] - cy, x[:, xs] - cx
                if orient:
                    ly, lx = lx, ly
                d = np.full((ys.stop - ys.start, xs.stop - xs.start), np.inf, np.float32)
                for k in (-2, 0, 2):  # three bars of width bw, gap bw
                    dk = np.maximum(np.abs(lx - k * bw) - bw / 2, np.abs(ly) - L / 2)
                    d = np.minimum(d, dk)
                cov[ys, xs] = np.maximum(cov[ys, xs], _cov(d, px))
                pos_x += 6 * bw
            pos_x += rng.uniform(0, 3 * bw)
        pos_y += 6 * bw + rng.uniform(0, 6e-6)
    return _binary_contrast(rng, cov, lam)


def _patch(rng: np.random.Generator, g: Grid) -> np.ndarray:
    """Coverage of one rectangular field of a test target (10–50 % of the frame, anywhere, slightly rotated):
    real patterned targets are finite, which also breaks the Talbot self-imaging of an endless pattern."""
    y, x, px = g
    ext_y, ext_x = y.shape[0] * px, x.shape[1] * px
    hh, hw = rng.uniform(0.15, 0.35) * ext_y, rng.uniform(0.15, 0.35) * ext_x
    cy, cx = rng.uniform(-0.4, 0.4) * ext_y, rng.uniform(-0.4, 0.4) * ext_x
    u, v = _rot(y - cy, x - cx, rng.uniform(-0.3, 0.3))
    return _cov(np.maximum(np.abs(u) - hh, np.abs(v) - hw), px)


def _grid_cov(rng: np.random.Generator, g: Grid) -> np.ndarray:
    y, x, px = g
    pitch = rng.uniform(4e-6, 25e-6)
    lw = rng.uniform(max(0.6e-6, 1.2 * px), min(3e-6, pitch / 3))
    u, v = _rot(y, x, rng.uniform(0, math.pi))
    off = rng.uniform(0, pitch, 2)
    du = np.abs(np.mod(u + off[0], pitch) - pitch / 2) - (pitch / 2 - lw / 2)
    dv = np.abs(np.mod(v + off[1], pitch) - pitch / 2) - (pitch / 2 - lw / 2)
    if rng.random() < 0.3:  # one-directional line grating
        return _cov(-du, px)
    return np.maximum(_cov(-du, px), _cov(-dv, px))


def _dots_cov(rng: np.random.Generator, g: Grid) -> np.ndarray:
    y, x, px = g
    pitch = rng.uniform(4e-6, 20e-6)
    r = rng.uniform(max(0.5e-6, 0.8 * px), min(3e-6, 0.4 * pitch))
    u, v = _rot(y, x, rng.uniform(0, math.pi))
    pv = pitch
    if rng.random() < 0.5:  # hexagonal lattice: shift every other row by half a pitch
        pv = pitch * 0.866
        u = u + np.mod(np.floor(v / pv), 2) * pitch / 2
    du = np.mod(u, pitch) - pitch / 2
    dv = np.mod(v, pv) - pv / 2
    cov = _cov(np.sqrt(du ** 2 + dv ** 2) - r, px)
    if rng.random() < 0.5:  # a few missing dots, like a patterned target with defects
        keep = rng.random((64, 64)) > 0.15
        iu = np.mod(np.floor(u / pitch).astype(np.int64), 64)
        iv = np.mod(np.floor(v / pv).astype(np.int64), 64)
        cov = cov * keep[iv, iu]
    return cov


def _patterned(rng: np.random.Generator, g: Grid, lam: float,
               pattern: Callable[[np.random.Generator, Grid], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """1–4 finite fields of a periodic pattern, each with its own pitch and orientation."""
    cov = np.zeros((g[0].shape[0], g[1].shape[1]), np.float32)
    for _ in range(int(rng.integers(1, 5))):
        np.maximum(cov, pattern(rng, g) * _patch(rng, g), out=cov)
    return _binary_contrast(rng, cov, lam)


def _grid(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    return _patterned(rng, g, lam, _grid_cov)


def _dots(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    return _patterned(rng, g, lam, _dots_cov)


def _siemens(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    y, x, px = g
    ext = max(y.shape[0], x.shape[1]) * px
    cy, cx = rng.uniform(-ext / 3, ext / 3, 2)
    spokes = int(rng.integers(12, 49))
    yy, xx = y - cy, x - cx
    r = np.sqrt(yy ** 2 + xx ** 2) + 1e-12
    theta = np.arctan2(yy, xx)
    # distance (m) to the nearest spoke edge along the arc, signed: negative inside dark spokes
    phase = np.mod(theta * spokes / (2 * math.pi), 1.0)
    d = (np.abs(phase - 0.5) - 0.25) * (2 * math.pi / spokes) * r
    cov = _cov(d, px)
    cov *= _cov(r - rng.uniform(0.3, 0.8) * ext, px)  # finite star
    return _binary_contrast(rng, cov.astype(np.float32), lam)


def _stamp(out: np.ndarray, g: Grid, cy: float, cx: float, half: float,
           fn: Callable[[np.ndarray, np.ndarray], np.ndarray], mode: str = "add") -> None:
    """Evaluate fn(local_y, local_x) on the bounding box of an object and accumulate it into `out`."""
    y, x, px = g
    h, w = out.shape
    i0, i1 = int((cy - half) / px + h / 2), int((cy + half) / px + h / 2) + 2
    j0, j1 = int((cx - half) / px + w / 2), int((cx + half) / px + w / 2) + 2
    i0, j0, i1, j1 = max(i0, 0), max(j0, 0), min(i1, h), min(j1, w)
    if i0 >= i1 or j0 >= j1:
        return
    v = fn(y[i0:i1] - cy, x[:, j0:j1] - cx)
    if mode == "max":
        np.maximum(out[i0:i1, j0:j1], v, out=out[i0:i1, j0:j1])
    else:
        out[i0:i1, j0:j1] += v


def _blob(rng: np.random.Generator, radius: float, h0: float, px: float, irregular: float = 0.25
          ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Dome-shaped cell of mean radius `radius` and height `h0`, elliptic and irregular outline, optional nucleus."""
    ecc = rng.uniform(0.6, 1.0)
    ang = rng.uniform(0, math.pi)
    k = np.arange(2, 6)
    amps = rng.normal(0, irregular, 4) / k
    phs = rng.uniform(0, 2 * math.pi, 4)
    nuc = rng.random() < 0.6
    nr, nh = rng.uniform(0.25, 0.45), rng.uniform(0.2, 0.6)
    noff = rng.normal(0, 0.15, 2) * radius

    def fn(ly: np.ndarray, lx: np.ndarray) -> np.ndarray:
        u, v = _rot(ly, lx, ang)
        v = v / ecc
        r = np.sqrt(u ** 2 + v ** 2) + 1e-12
        th = np.arctan2(u, v)
        rr = radius * (1 + sum(a * np.cos(kk * th + p) for a, kk, p in zip(amps, k, phs, strict=True)))
        rho2 = (r / np.maximum(rr, px)) ** 2
        hgt = h0 * np.sqrt(np.clip(1 - rho2, 0, None)) * _cov(r - rr, px)
        if nuc:
            rn2 = ((ly - noff[0]) ** 2 + (lx - noff[1]) ** 2) / (nr * radius) ** 2
            hgt = hgt + nh * h0 * np.sqrt(np.clip(1 - rn2, 0, None))
        return hgt.astype(np.float32)

    return fn


def _bio(rng: np.random.Generator, hmap: np.ndarray, lam: float, dn: tuple[float, float] = (0.02, 0.06),
         absorb: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Thickness map (m) → phase 2π·Δn·h/λ and weak absorption."""
    d_n = rng.uniform(*dn)
    kappa = rng.uniform(0, absorb) / 1e-6
    return np.exp(-kappa * hmap).astype(np.float32), (2 * math.pi * d_n / lam * hmap).astype(np.float32)


def _area(g: Grid) -> float:
    return g[0].shape[0] * g[1].shape[1] * g[2] ** 2


def _cells(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    y, x, px = g
    hmap = np.zeros((y.shape[0], x.shape[1]), np.float32)
    rmin, rmax = rng.uniform(2.5e-6, 6e-6), rng.uniform(7e-6, 16e-6)
    fill = rng.uniform(0.1, 0.4)
    n = max(1, int(fill * _area(g) / (math.pi * ((rmin + rmax) / 2) ** 2)))
    ext_y, ext_x = y.shape[0] * px / 2, x.shape[1] * px / 2
    for _ in range(min(n, 400)):
        r = rng.uniform(rmin, rmax)
        cy, cx = rng.uniform(-ext_y, ext_y), rng.uniform(-ext_x, ext_x)
        _stamp(hmap, g, cy, cx, 1.6 * r, _blob(rng, r, rng.uniform(1.5e-6, 6e-6), px), "max")
    return _bio(rng, hmap, lam)


def _cluster(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    y, x, px = g
    hmap = np.zeros((y.shape[0], x.shape[1]), np.float32)
    ext_y, ext_x = y.shape[0] * px / 2, x.shape[1] * px / 2
    n_clusters = max(1, int(_area(g) / (60e-6) ** 2 * rng.uniform(0.3, 1.0)))
    for _ in range(min(n_clusters, 100)):
        ccy, ccx = rng.uniform(-ext_y, ext_y), rng.uniform(-ext_x, ext_x)
        r = rng.uniform(2.5e-6, 6e-6)
        spread = r * rng.uniform(1.5, 4)
        for _ in range(int(rng.integers(3, 13))):
            cy, cx = ccy + rng.normal(0, spread), ccx + rng.normal(0, spread)
            rr = r * rng.uniform(0.7, 1.3)
            _stamp(hmap, g, cy, cx, 1.6 * rr, _blob(rng, rr, rng.uniform(1.5e-6, 5e-6), px, 0.1), "max")
    return _bio(rng, hmap, lam)


def _fibres(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    y, x, px = g
    h, w = y.shape[0], x.shape[1]
    hmap = np.zeros((h, w), np.float32)
    ext = max(h, w) * px
    for _ in range(int(rng.integers(3, 16))):
        r = rng.uniform(max(0.25e-6, px / 2), 2e-6)
        # a smooth random curve: a random walk of direction, one point every 2 pixels
        p = rng.uniform(-ext / 2, ext / 2, 2)
        ang = rng.uniform(0, 2 * math.pi)
        curv = rng.uniform(0.002, 0.05) / 1e-6
        step = 2 * px
        n = int(ext / step)
        turns = np.cumsum(rng.normal(0, curv * step, n)) + ang
        pts = p + step * np.cumsum(np.stack([np.sin(turns), np.cos(turns)], 1), 0)
        pix = np.round((pts[:, ::-1] / px + [w / 2, h / 2]) * 16).astype(np.int32)  # (x, y), 4 fractional bits
        line = np.full((h, w), 255, np.uint8)
        cv2.polylines(line, [pix.reshape(-1, 1, 2)], False, 0, 1, cv2.LINE_8, 4)
        d = cv2.distanceTransform(line, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * px
        np.maximum(hmap, 2 * np.sqrt(np.clip(r * r - d * d, 0, None)), out=hmap)
    return _bio(rng, hmap, lam)


def _beads(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    y, x, px = g
    hmap = np.zeros((y.shape[0], x.shape[1]), np.float32)
    rmin = max(0.5e-6, px)
    rmax = rng.uniform(rmin * 1.5, 5e-6)
    ext_y, ext_x = y.shape[0] * px / 2, x.shape[1] * px / 2
    n = max(1, int(_area(g) * rng.uniform(0.02, 0.15) / (math.pi * ((rmin + rmax) / 2) ** 2)))
    for _ in range(min(n, 600)):
        r = rng.uniform(rmin, rmax)
        cy, cx = rng.uniform(-ext_y, ext_y), rng.uniform(-ext_x, ext_x)

        def sphere(ly: np.ndarray, lx: np.ndarray, r: float = r) -> np.ndarray:
            d = np.sqrt(ly ** 2 + lx ** 2)
            return (2 * np.sqrt(np.clip(r * r - d * d, 0, None)) * _cov(d - r, px)).astype(np.float32)

        _stamp(hmap, g, cy, cx, r + px, sphere, "add")
    return _bio(rng, hmap, lam, dn=(0.05, 0.25), absorb=0.15)


def _rbc(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    y, x, px = g
    hmap = np.zeros((y.shape[0], x.shape[1]), np.float32)
    ext_y, ext_x = y.shape[0] * px / 2, x.shape[1] * px / 2
    n = max(1, int(_area(g) * rng.uniform(0.1, 0.4) / (math.pi * (3.9e-6) ** 2)))
    for _ in range(min(n, 500)):
        R = rng.uniform(3.2e-6, 4.4e-6)
        cy, cx = rng.uniform(-ext_y, ext_y), rng.uniform(-ext_x, ext_x)

        def disc(ly: np.ndarray, lx: np.ndarray, R: float = R) -> np.ndarray:
            rho2 = np.clip((ly ** 2 + lx ** 2) / R ** 2, 0, 1)
            # Evans–Fung biconcave profile (µm for R = 3.91 µm), scaled to R
            t = np.sqrt(1 - rho2) * (0.81 + 7.83 * rho2 - 4.39 * rho2 ** 2) * 1e-6 * (R / 3.91e-6)
            return (t * _cov(np.sqrt(ly ** 2 + lx ** 2) - R, px)).astype(np.float32)

        _stamp(hmap, g, cy, cx, R + px, disc, "max")
    return _bio(rng, hmap, lam, dn=(0.04, 0.08), absorb=0.1)


def _point(rng: np.random.Generator, g: Grid, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """A single small absorbing dot near the centre (a test 'point' object)."""
    y, x, px = g
    r = max(1.0e-6, 1.5 * px)
    cy, cx = rng.uniform(-5 * px, 5 * px, 2)
    cov = _cov(np.sqrt((y - cy) ** 2 + (x - cx) ** 2) - r, px)
    return (1 - 0.9 * cov).astype(np.float32), np.zeros_like(cov, dtype=np.float32)


KINDS: dict[str, Callable[[np.random.Generator, Grid, float], tuple[np.ndarray, np.ndarray]]] = {
    "usaf": _usaf, "grid": _grid, "dots": _dots, "siemens": _siemens, "cells": _cells, "cluster": _cluster,
    "fibres": _fibres, "beads": _beads, "rbc": _rbc, "point": _point,
}


def make_grid(shape: tuple[int, int], pixel_m: float) -> Grid:
    h, w = shape
    y = ((np.arange(h, dtype=np.float64) - h / 2) * pixel_m)[:, None]
    x = ((np.arange(w, dtype=np.float64) - w / 2) * pixel_m)[None, :]
    return y, x, pixel_m


def transmittance(kind: str, rng: np.random.Generator, shape: tuple[int, int], pixel_m: float,
                  wavelength_m: float) -> np.ndarray:
    """Complex64 transmittance amplitude·exp(i·phase) of a specimen of `kind` (see KINDS) filling the grid."""
    if kind not in KINDS:
        raise ValueError(f"unknown object kind {kind!r}; known: {', '.join(KINDS)}")
    amp, ph = KINDS[kind](rng, make_grid(shape, pixel_m), wavelength_m)
    t = np.empty(shape, np.complex64)
    np.cos(ph, out=t.real)
    np.sin(ph, out=t.imag)
    t *= amp
    return t
