"""What it would take to remove the in-line term that biases vit+refine (dhm-offaxis-10x, 512², training kinds): the
refine metrics' peak error on a dense z scan (±4 µm at 0.25 µm, holo_focus_bias.py's) around the true z, mean |error|
in µm per kind, for the same camera holograms demodulated four ways:

  linear  the shipped full-band field (autofocus.fullband_field): sideband of hologram − background ÷ background;
  log     nonlinear filtering of the hologram's logarithm (Pavillon et al. 2009, zero-order suppression): the sideband
          of log I gives log(1 + O/R) when |O/R| < 1 and the fringes have full visibility; (e^f − 1) of the frame
          divided by that of the background;
  oracle  a nonlinear least-squares fit of the pupil-limited object wave O to the whole hologram
          I = |O|² + |R|² + 2v·Re(O·R*), given the simulator's true reference R, visibility v and camera gain
          (L-BFGS on O's spectrum inside 1.1 NA/λ, started from the linear field): the in-line term is modelled,
          not filtered;
  blind   the same fit from the frame and its background hologram alone: I − B = β|S_B|(|w|² − 1) + 2Re((w − 1)S_B),
          w = O/E, S_B the background's sideband, β = |E|/(v|R|) an unknown smooth field exp(quadratic) fitted with w.

  .venv/bin/python bench/holo_inline_fit.py [--kinds cells,cluster,fibres] [--n 4] [--iters 300] [--no-blind]

A diagnosis that ships nothing. Measured 2026-12-02 (2 cores; `--no-blind --n 5 --kinds cells,cluster,fibres,dots`),
mean |error| µm, linear → log → oracle:

  logrealness_clip  cells 0.56 → 2.42 → 1.26, cluster 0.34 → 2.97 → 0.05, fibres 0.96 → 3.07 → 0.56,
                    dots 2.04 → 2.72 → 1.18
  realness_clip     cells 1.33 → 3.03 → 0.96, cluster 0.44 → 1.87 → 0.55, fibres 0.40 → 2.99 → 0.59,
                    dots 0.57 → 2.85 → 1.15

The log filter fails outright: this preset's beams are near 1:1 (|O/R| crosses 1) and the visibility is 0.7-1.

Even knowing the beams exactly, the fit finds the field on some frames (field error 0.12 → 0.03 on a cells frame,
0.34 → 0.08 on a cluster frame; logrealness then within 0.2 µm) and not on others: where the carrier lies inside the
pupil (|c| < NA/λ) or the scatterer is strong, L-BFGS stops in a wrong minimum (field error 0.36-1.5) and the focus is
worse than the linear field's. It costs 32-300 iterations, 0.7-7 s per 512² frame (median 1.9 s): ~130× the 15 ms
budget of vit+refine. The blind fit (`--n 2 --kinds cells,cluster --iters 200`) finds β within 3-20 % where it
converges, but its focus is worse than the linear field's (logrealness cells 0.33 → 1.11, cluster 0.23 → 0.43) at
~16 s per frame. On the held-out kinds (`--no-blind --n 4 --kinds rbc,beads,siemens`, a diagnosis that chose
nothing) the oracle takes rbc's logrealness from 0.94 to 0.47 µm (field error 0.36-0.93 → 0.18-0.58, not converged in
176-300 iterations, 3-7 s), beads' realness_clip from 0.37 to 0.82."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft as sfft
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from holo_focus_bias import PIXEL_M, peak_errors, specimen  # noqa: E402

from plugins.holography.autofocus import fullband_field, resample_field  # noqa: E402
from plugins.holography.physics import camera  # noqa: E402
from plugins.holography.reconstruct import Carrier, Reconstructor  # noqa: E402

METRICS = ("realness_clip", "logrealness_clip")


def _freqs(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :]


def _pack(spec: np.ndarray, idx: np.ndarray) -> np.ndarray:
    s = spec.ravel()[idx]
    return np.concatenate([s.real, s.imag])


def _unpack(x: np.ndarray, idx: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    n = len(idx)
    s = np.zeros(shape[0] * shape[1], np.complex128)
    s[idx] = x[:n] + 1j * x[n:2 * n]
    return sfft.ifft2(s.reshape(shape), workers=2)


def log_filtered(holo: np.ndarray, bg: np.ndarray, c: Carrier, band: float, black: float) -> np.ndarray:
    """w = O/E from the sidebands (1.15 × band around the carrier) of log(frame) and log(background)."""
    fy, fx = _freqs(holo.shape)
    mask = (fy - c.fy) ** 2 + (fx - c.fx) ** 2 < (1.15 * band) ** 2

    def side(a: np.ndarray) -> np.ndarray:
        return np.expm1(sfft.ifft2(sfft.fft2(np.log(np.maximum(a - black, 0.5)), workers=2) * mask, workers=2))

    return side(holo.astype(np.float64)) / side(bg.astype(np.float64))


def fit_oracle(intensity: np.ndarray, ref_conj: np.ndarray, visibility: float, band: float, init: np.ndarray,
               iters: int) -> tuple[np.ndarray, int, float]:
    """Object wave O (band-limited to 1.1 × band c/px) minimising ½‖|O|² + |R|² + 2v·Re(O·R*) − I‖², from `init`."""
    shape = intensity.shape
    fy, fx = _freqs(shape)
    idx = np.flatnonzero(fy ** 2 + fx ** 2 < (1.1 * band) ** 2)
    rc = ref_conj.astype(np.complex128)
    rr = np.abs(rc) ** 2

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        o = _unpack(x, idx, shape)
        res = np.abs(o) ** 2 + rr + 2 * visibility * (o * rc).real - intensity
        g = 2 * res * (o + visibility * np.conj(rc))  # ∂L/∂Ō (Wirtinger), so dL = Re Σ conj(g)·dO
        return 0.5 * float((res ** 2).sum()), _pack(sfft.fft2(g, workers=2) / intensity.size, idx)

    t0 = time.perf_counter()
    r = minimize(loss, _pack(sfft.fft2(init, workers=2), idx), jac=True, method="L-BFGS-B",
                 options={"maxiter": iters, "maxcor": 20})
    return _unpack(r.x, idx, shape), int(r.nit), time.perf_counter() - t0


def fit_blind(holo: np.ndarray, bg: np.ndarray, c: Carrier, band: float, iters: int,
              beta_starts: tuple[float, ...] = (0.7, 1.4)) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(w = O/E, β field, iterations, seconds) fitted to I − B from the frame and its background hologram only."""
    a, b = holo.astype(np.float64), bg.astype(np.float64)
    shape = a.shape
    fy, fx = _freqs(shape)
    sb = sfft.ifft2(sfft.fft2(b, workers=2) * ((fy - c.fy) ** 2 + (fx - c.fx) ** 2 < min(band, c.magnitude / 2) ** 2),
                    workers=2)
    scale = float(np.median(np.abs(sb)))
    sb /= scale
    d = (a - b) / scale
    asb = np.abs(sb)
    idx = np.flatnonzero(fy ** 2 + fx ** 2 < (1.1 * band) ** 2)
    n = len(idx)
    yy = np.broadcast_to(np.arange(shape[0])[:, None] / shape[0] - 0.5, shape)
    xx = np.broadcast_to(np.arange(shape[1])[None, :] / shape[1] - 0.5, shape)
    basis = np.stack([np.ones(shape), yy, xx, yy * yy, yy * xx, xx * xx])
    wide = (fy - c.fy) ** 2 + (fx - c.fx) ** 2 < (1.15 * band) ** 2
    s0 = sfft.ifft2(sfft.fft2(d, workers=2) * wide, workers=2) / np.where(asb > 1e-3, sb, 1e-3)

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        s = _unpack(x, idx, shape)
        beta = np.exp(np.tensordot(x[2 * n:], basis, 1))
        a2 = (s.real + 1) ** 2 + s.imag ** 2 - 1
        res = beta * asb * a2 + 2 * (s * sb).real - d
        g = 2 * res * (beta * asb * (1 + s) + np.conj(sb))
        gq = np.tensordot(basis, res * beta * asb * a2, ((1, 2), (0, 1)))
        return 0.5 * float((res ** 2).sum()), np.concatenate([_pack(sfft.fft2(g, workers=2) / d.size, idx), gq])

    t0, best = time.perf_counter(), None
    for b0 in beta_starts:
        x0 = np.concatenate([_pack(sfft.fft2(s0, workers=2), idx), [math.log(b0), 0, 0, 0, 0, 0]])
        with np.errstate(over="ignore", invalid="ignore"):
            r = minimize(loss, x0, jac=True, method="L-BFGS-B", options={"maxiter": iters, "maxcor": 20})
        if np.isfinite(r.fun) and (best is None or r.fun < best.fun):
            best = r
    if best is None:
        return 1 + s0, np.full(shape, np.nan), 0, time.perf_counter() - t0
    beta = np.exp(np.tensordot(best.x[2 * n:], basis, 1))
    return 1 + _unpack(best.x, idx, shape), beta, int(best.nit), time.perf_counter() - t0


def field_error(w: np.ndarray, truth: np.ndarray, margin: int = 32) -> float:
    """‖w − truth‖ / ‖truth − 1‖ over the frame's interior: the error relative to the scattered field."""
    inner = (slice(margin, -margin), slice(margin, -margin))
    return float(np.linalg.norm((w - truth)[inner]) / np.linalg.norm((truth - 1)[inner]))


def run(kinds: list[str], n: int, seed: int, iters: int, blind: bool) -> None:
    errs: dict[tuple[str, str, str], list[float]] = {}
    times: dict[str, list[float]] = {}
    ways = ("linear", "log", "oracle") + (("blind",) if blind else ())
    for kind in kinds:
        for i in range(n):
            rng, scene, empty, z_m = specimen(kind, i, seed)
            session, optics = scene.session, scene.optics
            level = scene.background_level()
            holo = camera(scene.intensity(z_m), session, level, rng)
            bg = camera(empty.intensity(0.0), session, empty.background_level(), rng)
            top = (1 << session.bits) - 1
            counts_per_unit = session.fill * session.full_well / level * top / session.full_well
            intensity = (holo.astype(np.float64) - session.offset * top) / counts_per_unit
            rec = Reconstructor(optics, bg)
            rec.hologram_field(holo)  # finds the carrier
            band = optics.na / optics.wavelength_m * optics.pixel_size_m
            env = scene._illum.astype(np.float64)
            t0 = time.perf_counter()
            fields = {"linear": fullband_field(rec, holo, PIXEL_M)}
            times.setdefault("linear", []).append(time.perf_counter() - t0)
            w_log = log_filtered(holo, bg, rec.carrier, band, session.offset * top)
            fields["log"] = resample_field(w_log.astype(np.complex64), optics.pixel_size_m, PIXEL_M)
            linear_native = fullband_field(rec, holo, optics.pixel_size_m).astype(np.complex128) * env
            o, it_o, t_o = fit_oracle(intensity, scene._ref_conj, session.visibility, band, linear_native, iters)
            fields["oracle"] = resample_field((o / env).astype(np.complex64), optics.pixel_size_m, PIXEL_M)
            times.setdefault("oracle", []).append(t_o)
            truth = scene.field(z_m).astype(np.complex128) / env
            note = (f"field error linear {field_error(linear_native / env, truth):.3f} "
                    f"oracle {field_error(o / env, truth):.3f}; "
                    f"oracle {it_o} it {t_o:.1f} s")
            if blind:
                w, beta, it_b, t_b = fit_blind(holo, bg, rec.carrier, band, iters)
                fields["blind"] = resample_field(w.astype(np.complex64), optics.pixel_size_m, PIXEL_M)
                times.setdefault("blind", []).append(t_b)
                true_beta = env / (session.visibility * np.abs(scene._ref_conj))
                note += (f", blind field error {field_error(w, truth):.3f} {it_b} it {t_b:.1f} s, "
                         f"β mean true {true_beta.mean():.2f} fitted {np.nanmean(beta):.2f}")
            row = []
            for way in ways:
                for name, e in peak_errors(fields[way], optics, z_m, METRICS).items():
                    errs.setdefault((kind, way, name), []).append(e)
                    row.append(f"{way}/{name.split('_')[0]} {e:+.2f}")
            beta0 = 1 / (session.ref_ratio * session.visibility)
            print(f"{kind:8s} |c| {rec.carrier.magnitude:.3f} NA/λ {band:.3f} c/px, β≈{beta0:.2f}: " + " ".join(row)
                  + f"  ({note})", flush=True)
    print(f"\nmean |error| µm over {n} specimens per kind (scan ±4 µm, 0.25 µm steps)")
    print(f"{'kind':9s} {'way':7s} " + " ".join(f"{m:>17s}" for m in METRICS))
    for kind in kinds:
        for way in ways:
            print(f"{kind:9s} {way:7s} " + " ".join(f"{np.mean(np.abs(errs[(kind, way, m)])):17.2f}" for m in METRICS))
    print("seconds per 512² frame (median): " + ", ".join(f"{w} {np.median(t):.3f}" for w, t in times.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="cells,cluster,fibres")
    ap.add_argument("--n", type=int, default=4, help="specimens per kind")
    ap.add_argument("--iters", type=int, default=300, help="L-BFGS iterations at most")
    ap.add_argument("--seed", type=int, default=78)
    ap.add_argument("--no-blind", action="store_true", help="skip the (slow) blind fit")
    a = ap.parse_args()
    run([k for k in a.kinds.split(",") if k], a.n, a.seed, a.iters, not a.no_blind)


if __name__ == "__main__":
    main()
