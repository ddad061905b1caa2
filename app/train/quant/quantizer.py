"""Fake quantizers (torch): uniform with a percentile search (RepQ-ViT), log√2 post-softmax and its two-shift
form, and I&S-ViT's shift-uniform-log2 (SULQ) with the η search. Straight-through rounding for training."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

PERCENTILES = (0.999, 0.9999, 0.99999)
ETAS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5, 1.0)
_MAX_SAMPLES = 1 << 21


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round() with a straight-through gradient."""
    return (x.round() - x).detach() + x


def _rows(x: torch.Tensor, channel_dim: int | None) -> torch.Tensor:
    """(C, M) view of x with the channel dim first (C = 1 per-tensor); deterministic subsampling when large."""
    rows = x.detach().reshape(1, -1) if channel_dim is None else x.detach().movedim(channel_dim, 0).reshape(
        x.shape[channel_dim], -1)
    if rows.shape[1] * rows.shape[0] > _MAX_SAMPLES:
        step = math.ceil(rows.shape[1] * rows.shape[0] / _MAX_SAMPLES)
        rows = rows[:, ::step]
    return rows.float()


class _SelfCalibrating(nn.Module):
    """A fake quantizer that calibrates on the first batch it sees; with `enabled` False it passes x through."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled, self.inited = True, False

    def calibrate(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def fake_quant(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if not self.inited:
            self.calibrate(x)
        return self.fake_quant(x)


class UniformQuantizer(_SelfCalibrating):
    """x_q = clamp(round(x/s) + z, 0, 2^b − 1), dequantised (x_q − z)·s; per tensor or per `channel_dim`.
    `calibrate` searches clipping percentiles (min L2 error, per channel); percentiles=(1.0,) is MinMax."""

    def __init__(self, bits: int, channel_dim: int | None = None, percentiles: Sequence[float] = PERCENTILES,
                 integer_zero_point: bool = True) -> None:
        super().__init__()
        self.bits, self.channel_dim, self.percentiles = bits, channel_dim, tuple(percentiles)
        self.integer_zero_point = integer_zero_point
        self.register_buffer("scale", torch.ones(1))
        self.register_buffer("zero_point", torch.zeros(1))

    @property
    def levels(self) -> int:
        return 2**self.bits - 1

    def _shape(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.channel_dim is None or v.numel() == 1:
            return v.reshape(())
        shape = [1] * x.ndim
        shape[self.channel_dim] = -1
        return v.reshape(shape)

    def quant(self, x: torch.Tensor, scale: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
        q = torch.clamp(round_ste(x / scale) + zp, 0, self.levels)
        return (q - zp) * scale

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        rows = _rows(x, self.channel_dim)
        best_err = torch.full((rows.shape[0],), float("inf"))
        best_s, best_z = torch.ones(rows.shape[0]), torch.zeros(rows.shape[0])
        for p in self.percentiles:
            if p >= 1.0:
                lo, hi = rows.min(dim=1).values, rows.max(dim=1).values
            else:
                lo, hi = torch.quantile(rows, 1 - p, dim=1), torch.quantile(rows, p, dim=1)
            lo, hi = torch.minimum(lo, torch.zeros_like(lo)), torch.maximum(hi, torch.zeros_like(hi))
            s = torch.clamp((hi - lo) / self.levels, min=1e-8)
            z = torch.round(-lo / s) if self.integer_zero_point else -lo / s
            q = torch.clamp(torch.round(rows / s[:, None]) + z[:, None], 0, self.levels)
            err = ((q - z[:, None]) * s[:, None] - rows).pow(2).mean(dim=1)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_s, best_z = torch.where(better, s, best_s), torch.where(better, z, best_z)
        self.set_params(best_s, best_z)

    def set_params(self, scale: torch.Tensor, zero_point: torch.Tensor) -> None:
        self.scale = scale.detach().clone().float()
        self.zero_point = zero_point.detach().clone().float()
        self.inited = True

    def fake_quant(self, x: torch.Tensor) -> torch.Tensor:
        s, z = self._shape(x, self.scale).to(x.dtype), self._shape(x, self.zero_point).to(x.dtype)
        return self.quant(x, s, z)


def log_sqrt2_codes(a: torch.Tensor, scale: torch.Tensor | float, bits: int) -> torch.Tensor:
    """q = round(−2·log2(A/s)); values with q ≥ 2^b (and A = 0) get the code 2^b, meaning 0."""
    q = torch.round(-2.0 * torch.log2(torch.clamp(a / scale, min=1e-30)))
    q = torch.clamp(q, min=0)
    return torch.where((q >= 2**bits) | (a <= 0), torch.full_like(q, 2**bits), q)


def log_sqrt2_dequant(q: torch.Tensor, scale: torch.Tensor | float, bits: int) -> torch.Tensor:
    """Â = s·2^(−q/2), 0 where q = 2^b."""
    return torch.where(q >= 2**bits, torch.zeros_like(q), scale * torch.pow(2.0, -q / 2))


def two_shift_matmul(q: torch.Tensor, scale: torch.Tensor | float, bits: int, v: torch.Tensor) -> torch.Tensor:
    """A·V from log√2 codes as two shift-accumulate sums: s·Σ_even 2^(−⌈q/2⌉)V + √2·s·Σ_odd 2^(−⌈q/2⌉)V."""
    valid = q < 2**bits
    shift = torch.pow(2.0, -torch.ceil(q / 2))
    odd = (q.remainder(2) == 1) & valid
    even = (~odd) & valid
    return scale * (torch.where(even, shift, 0.0) @ v) + math.sqrt(2.0) * scale * (torch.where(odd, shift, 0.0) @ v)


class LogSqrt2Quantizer(_SelfCalibrating):
    """RepQ-ViT's post-softmax quantizer; the scale s comes from the percentile search (min L2 error)."""

    def __init__(self, bits: int, percentiles: Sequence[float] = PERCENTILES) -> None:
        super().__init__()
        self.bits, self.percentiles = bits, tuple(percentiles)
        self.register_buffer("scale", torch.ones(()))

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        rows = _rows(x, None)[0]
        best = (float("inf"), 1.0)
        for p in (*self.percentiles, 1.0):
            s = float(torch.quantile(rows, p)) if p < 1 else float(rows.max())
            s = max(s, 1e-8)
            err = float((log_sqrt2_dequant(log_sqrt2_codes(rows, s, self.bits), s, self.bits) - rows).pow(2).mean())
            if err < best[0]:
                best = (err, s)
        self.scale = torch.tensor(best[1])
        self.inited = True

    def fake_quant(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scale.to(x.dtype)
        deq = log_sqrt2_dequant(log_sqrt2_codes(x.detach(), s, self.bits), s, self.bits)
        return (deq - x).detach() + x


class SULQuantizer(_SelfCalibrating):
    """I&S-ViT SULQ: X_q = UQ(−log2(X + η), b) over the calibration [min, max] of −log2(X + η), then
    X̄ = 2^(−round(D-UQ(X_q))) − η. η is grid-searched (min L2 error); `fixed_range` pins the uniform range."""

    def __init__(self, bits: int, etas: Sequence[float] = ETAS, fixed_range: tuple[float, float] | None = None
                 ) -> None:
        super().__init__()
        self.bits, self.etas, self.fixed_range = bits, tuple(etas), fixed_range
        self.eta, self.lo, self.hi = 0.01, 0.0, 1.0

    def _quantize_sulq(self, x: torch.Tensor, eta: float, lo: float, hi: float) -> torch.Tensor:
        levels = 2**self.bits - 1
        s = max((hi - lo) / levels, 1e-8)
        u = -torch.log2(x + eta)
        q = torch.clamp(torch.round((u - lo) / s), 0, levels)
        return torch.pow(2.0, -torch.round(q * s + lo)) - eta

    def _range(self, rows: torch.Tensor, eta: float) -> tuple[float, float]:
        if self.fixed_range is not None:
            return self.fixed_range
        u = -torch.log2(rows + eta)
        return float(u.min()), float(u.max())

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> None:
        rows = _rows(x, None)[0].clamp(min=0)
        best = (float("inf"), self.etas[0])
        for eta in self.etas:
            lo, hi = self._range(rows, eta)
            err = float((self._quantize_sulq(rows, eta, lo, hi) - rows).pow(2).mean())
            if err < best[0]:
                best = (err, eta)
        self.eta = best[1]
        self.lo, self.hi = self._range(rows, self.eta)
        self.inited = True

    def fake_quant(self, x: torch.Tensor) -> torch.Tensor:
        deq = self._quantize_sulq(x.detach().clamp(min=0), self.eta, self.lo, self.hi).to(x.dtype)
        return (deq - x).detach() + x


def log2_quant(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Plain log2 quantizer with unit scale: 2^(−clamp(round(−log2 x), 0, 2^b − 1))."""
    q = torch.clamp(torch.round(-torch.log2(torch.clamp(x, min=1e-30))), 0, 2**bits - 1)
    return torch.pow(2.0, -q)
