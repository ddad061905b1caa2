"""Soaks of the live holography loop and of ECG batch screening: after warm-up, resident memory, open files and
threads must not grow, and stopping releases every file and thread the run opened. The default run soaks each for
seconds; `-m soak` for VITASCOPE_SOAK_MINUTES (60)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.soak import soak_ecg, soak_holo, summarize
from plugins.holography import fftback

KHAN = Path(__file__).resolve().parents[3] / "shared" / "data" / "ecg-real" / "khan"


def _open_now() -> dict[str, int]:
    fftback.wait_tuning(60)  # the FFT backend's one-off timing thread ends by itself
    return {"fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count()}


def _soak(run: Callable[[], list[dict]], warmup_s: float, window_s: float, max_growth_pct: float,
          warm: Callable[[], object]) -> dict:
    warm()  # one-off resources (onnxruntime's own cache database, FFT plans) are opened once per process
    before = _open_now()
    summary = summarize(run(), warmup_s=warmup_s, window_s=window_s)
    after = _open_now()
    assert summary["work"] > 0, summary
    assert after["fds"] <= before["fds"] and after["threads"] <= before["threads"], (before, after)
    assert summary["fds_end"] <= summary["fds_start"], summary
    assert summary["threads_end"] <= summary["threads_start"], summary
    assert summary["rss_growth_pct"] < max_growth_pct, summary
    return summary


def _ecg_files() -> list[Path] | None:
    """The real report images when the shared data are beside the clone, else the plug-in's own samples."""
    return sorted(KHAN.rglob("*.jpg")) if KHAN.is_dir() else None


def test_live_holography_loop_short_soak() -> None:
    _soak(lambda: soak_holo(14, every=1.0, record_every=5.0, record_for=3.0), 3, 3, max_growth_pct=20,
          warm=lambda: soak_holo(3, every=1.0, record_every=1.0, record_for=1.0))


def test_ecg_batch_screening_short_soak() -> None:
    files = _ecg_files()
    files = files[:8] if files else None
    _soak(lambda: soak_ecg(12, every=1.0, paths=files), 3, 3, max_growth_pct=20,
          warm=lambda: soak_ecg(1, every=1.0, paths=files))


def _minutes() -> float:
    return float(os.environ.get("VITASCOPE_SOAK_MINUTES", "60"))


@pytest.mark.soak
def test_live_holography_loop_soak() -> None:
    m = _minutes()
    _soak(lambda: soak_holo(m * 60), m * 6, m * 5, max_growth_pct=5,
          warm=lambda: soak_holo(3, every=1.0, record_every=1.0, record_for=1.0))


@pytest.mark.soak
def test_ecg_batch_screening_soak() -> None:
    m = _minutes()
    files = _ecg_files()
    _soak(lambda: soak_ecg(m * 60, paths=files), m * 6, m * 5, max_growth_pct=5,
          warm=lambda: soak_ecg(1, every=1.0, paths=files))
