"""Phase unwrapping by unweighted least squares (Ghiglia & Romero 1994): wrapped gradients → Poisson equation solved
with a DCT (Neumann boundaries), then made congruent with the wrapped phase."""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def unwrap_phase(wrapped: np.ndarray, congruent: bool = True) -> np.ndarray:
    """Unwrapped phase (float32, same shape) of a 2-D wrapped phase in radians. With `congruent`, the result
    differs from the input by exact multiples of 2π (the LS solution rounded onto the wrapped data)."""
    psi = np.asarray(wrapped, np.float64)
    if psi.ndim != 2:
        raise ValueError(f"unwrap_phase expects a 2-D array, got shape {psi.shape}")
    h, w = psi.shape
    dy = np.zeros_like(psi)
    dx = np.zeros_like(psi)
    dy[:-1] = _wrap(np.diff(psi, axis=0))
    dx[:, :-1] = _wrap(np.diff(psi, axis=1))
    rho = dy.copy()
    rho[1:] -= dy[:-1]
    rho += dx
    rho[:, 1:] -= dx[:, :-1]
    r = sfft.dctn(rho, type=2, workers=2)
    iy = np.arange(h)[:, None]
    ix = np.arange(w)[None, :]
    denom = 2 * np.cos(np.pi * iy / h) + 2 * np.cos(np.pi * ix / w) - 4
    denom[0, 0] = 1.0
    r /= denom
    r[0, 0] = 0.0
    phi = sfft.idctn(r, type=2, workers=2)
    if congruent:
        phi = phi + _wrap(psi - phi)
    phi -= phi.mean() - psi.mean()
    return phi.astype(np.float32)
