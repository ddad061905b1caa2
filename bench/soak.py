"""Soak: run the live holography loop or ECG batch screening for a long time, sampling resident memory, open files
and threads, and say whether anything grows (`python bench/soak.py --what holo --minutes 60 --out r.json`)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.host import HeadlessHost  # noqa: E402


def sample(t0: float, work: int, busy: bool = False) -> dict[str, float]:
    """This process now: RSS (MB), open file descriptors, OS threads, Python threads, work units done so far;
    `busy` marks a sample taken while something legitimately holds a file or thread open (a recording)."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"t_s": round(time.monotonic() - t0, 1), "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
            "fds": len(os.listdir("/proc/self/fd")), "threads": int(fields["Threads"]),
            "py_threads": threading.active_count(), "work": work, "busy": int(busy)}


def _sampler(seconds: float, every: float) -> Iterator[float]:
    """Yields the elapsed time at each sampling instant until `seconds` have passed."""
    t0 = time.monotonic()
    nxt = t0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            return
        if now >= nxt:
            nxt += every
            yield now - t0
        time.sleep(min(0.2, max(0.0, nxt - time.monotonic())))


def soak_holo(seconds: float, every: float = 10.0, record_every: float = 120.0, record_for: float = 10.0,
              size: int = 512, fps: float = 20.0) -> list[dict[str, float]]:
    """The live loop as the app runs it: a paced simulated camera streamed through the engine on the host's stream
    thread; every `record_every` s a `record_for` s HDF5 recording is made and deleted (recorder threads and files
    come and go)."""
    from plugins.holography import fftback
    from plugins.holography.engine import HoloEngine

    host = HeadlessHost(plugin_id="holography")
    engine = HoloEngine(host)
    cam = engine.demo_source(fps=fps, size=size, seed=3, paced=True)
    engine.attach(cam)
    done = [0]

    def on_result(_r: Any) -> None:
        done[0] += 1

    handle = host.start_stream(cam, engine.process, on_result)
    while done[0] == 0 and handle.running:
        time.sleep(0.05)
    fftback.wait_tuning(120)  # the FFT backend's one-off timing thread, started by the first frame
    tmp = Path(tempfile.mkdtemp(prefix="soak-holo-"))
    samples: list[dict[str, float]] = []
    t0 = time.monotonic()
    rec_started: float | None = None
    n_rec = 0
    try:
        for t in _sampler(seconds, 1.0):
            if rec_started is None and t >= (n_rec + 1) * record_every:
                engine.start_recording(tmp / f"rec-{n_rec}.h5")
                rec_started = t
            elif rec_started is not None and t - rec_started >= record_for:
                engine.stop_recording()
                (tmp / f"rec-{n_rec}.h5").unlink(missing_ok=True)
                rec_started, n_rec = None, n_rec + 1
            if not samples or t - samples[-1]["t_s"] >= every:
                samples.append(sample(t0, done[0], busy=rec_started is not None))
    finally:
        engine.stop_recording()
        handle.stop(5.0)
        engine.close()
        host.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    return samples


def soak_ecg(seconds: float, every: float = 10.0, paths: list[Path] | None = None,
             batch: int = 8) -> list[dict[str, float]]:
    """Batch screening as `ecg screen FOLDER` runs it, over and over: the same engine, files read afresh each pass."""
    from plugins.ecg.engine import EcgEngine

    host = HeadlessHost(plugin_id="ecg")
    engine = EcgEngine(host)
    files = list(paths) if paths else list(engine.demo_files())
    if not files:
        raise SystemExit("no ECG files to screen")
    samples: list[dict[str, float]] = []
    t0 = time.monotonic()
    done = 0
    last = -1e9
    try:
        while time.monotonic() - t0 < seconds:
            results, _errors = engine.screen_paths(files, batch=batch)
            done += len(results)
            if time.monotonic() - last >= every:
                samples.append(sample(t0, done))
                last = time.monotonic()
    finally:
        engine.close()
        host.shutdown()
    return samples


def summarize(samples: list[dict[str, float]], warmup_s: float, window_s: float) -> dict[str, Any]:
    """Growth after warm-up: the median of the first `window_s` after `warmup_s` against the median of the last
    `window_s` (medians, so one garbage-collection peak decides nothing). Open files and threads are compared on
    the samples taken while nothing was recording."""
    after = [s for s in samples if s["t_s"] >= warmup_s]
    if len(after) < 2:
        raise SystemExit("too few samples after warm-up: soak longer or sample more often")

    def med(rows: list[dict[str, float]], k: str) -> float:
        return float(statistics.median(r[k] for r in rows))

    def ends(rows: list[dict[str, float]]) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
        first = [r for r in rows if r["t_s"] < rows[0]["t_s"] + window_s]
        return first, [r for r in rows if r["t_s"] >= rows[-1]["t_s"] - window_s]

    start, end = ends(after)
    idle_start, idle_end = ends([r for r in after if not r.get("busy")] or after)
    span_h = (after[-1]["t_s"] - start[0]["t_s"]) / 3600
    rss0, rss1 = med(start, "rss_mb"), med(end, "rss_mb")
    return {"seconds": samples[-1]["t_s"], "samples": len(samples), "work": samples[-1]["work"],
            "rate_per_s": samples[-1]["work"] / max(samples[-1]["t_s"], 1e-9),
            "rss_start_mb": rss0, "rss_end_mb": rss1, "rss_peak_mb": max(s["rss_mb"] for s in after),
            "rss_growth_pct": 100 * (rss1 - rss0) / rss0,
            "rss_slope_mb_per_h": (rss1 - rss0) / span_h if span_h > 0 else 0.0,
            "fds_start": med(idle_start, "fds"), "fds_end": med(idle_end, "fds"),
            "fds_max": max(s["fds"] for s in after),
            "threads_start": med(idle_start, "threads"), "threads_end": med(idle_end, "threads"),
            "threads_max": max(s["threads"] for s in after)}


RUNS: dict[str, Callable[..., list[dict[str, float]]]] = {"holo": soak_holo, "ecg": soak_ecg}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--what", choices=sorted(RUNS), required=True)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--warmup", type=float, default=5.0, help="minutes ignored at the start")
    ap.add_argument("--window", type=float, default=5.0, help="minutes averaged at each end")
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--folder", type=Path, help="ecg: screen these files instead of the demo files")
    ap.add_argument("--out", type=Path, help="write samples and summary as JSON")
    a = ap.parse_args(argv)
    kw: dict[str, Any] = {"every": a.every}
    if a.what == "ecg" and a.folder:
        kw["paths"] = sorted(p for p in a.folder.rglob("*") if p.is_file())
    samples = RUNS[a.what](a.minutes * 60, **kw)
    summary = summarize(samples, a.warmup * 60, a.window * 60)
    print(json.dumps({"what": a.what, **summary}, indent=1))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"what": a.what, "summary": summary, "samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
