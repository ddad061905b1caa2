"""Runtime benchmark: ORT latency of every shipped model at 2 vs 1 intra-op threads, and frame staleness of the
newest-wins buffer vs a FIFO queue when processing is slower than the camera. Ratios against same-run references.

    .venv/bin/python bench/runtime.py
"""

from __future__ import annotations

import queue
import statistics
import threading
import time

import numpy as np

from app.core.frames import Frame, LatestFrameBuffer
from app.core.runtime import create_session
from app.core.zoo import Zoo, example_inputs


def median_ms(fn, n: int = 200, rounds: int = 5) -> float:
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        per_round.append((time.perf_counter() - t0) / n * 1e3)
    return statistics.median(per_round)


def bench_models() -> None:
    print(f"{'model':28s} {'1 thread ms':>12s} {'2 threads ms':>13s} {'ratio 2/1':>10s}")
    for entry in Zoo().entries():
        if entry.card is None:
            continue
        feeds = {s.name: x for s, x in zip(entry.card.inputs, example_inputs(entry.card), strict=True)}
        times = {}
        for threads in (1, 2):
            sess = create_session(entry.folder / "model.onnx", threads=threads)
            times[threads] = median_ms(lambda s=sess, f=feeds: s.run(None, f))
        print(f"{entry.id:28s} {times[1]:12.3f} {times[2]:13.3f} {times[2] / times[1]:10.2f}")


def staleness(use_latest: bool, fps: float = 200.0, work_s: float = 0.01, seconds: float = 2.0) -> float:
    """Median age (ms) of the frame being processed when its result is ready."""
    buf: LatestFrameBuffer | queue.Queue = LatestFrameBuffer() if use_latest else queue.Queue()
    stop = threading.Event()
    ages: list[float] = []

    def camera() -> None:
        i = 0
        while not stop.is_set():
            buf.put(Frame(i, np.zeros(1)))
            i += 1
            time.sleep(1.0 / fps)

    t = threading.Thread(target=camera, daemon=True)
    t.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        frame = buf.get(timeout=0.5)
        if frame is None:
            continue
        time.sleep(work_s)
        ages.append((time.monotonic() - frame.timestamp) * 1e3)
    stop.set()
    t.join()
    return statistics.median(ages)


def main() -> None:
    bench_models()
    fifo = staleness(False)
    latest = staleness(True)
    print(f"\nlive view, camera 200 fps, 10 ms per frame: median frame age FIFO {fifo:.0f} ms, "
          f"newest-wins {latest:.0f} ms, ratio {latest / fifo:.3f}")


if __name__ == "__main__":
    main()
