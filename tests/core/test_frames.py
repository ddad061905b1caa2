"""The newest frame wins: no backlog builds up when processing is slower than the source."""

from __future__ import annotations

import threading
import time

import numpy as np

from app.core.frames import ArraySource, Frame, LatestFrameBuffer, StreamHandle


def test_latest_frame_buffer_keeps_only_newest():
    buf = LatestFrameBuffer()
    for i in range(5):
        buf.put(Frame(i, np.zeros(1)))
    assert buf.get(0.1).index == 4
    assert buf.dropped == 4
    assert buf.get(0.01) is None
    buf.close()
    assert buf.get(1.0) is None


def test_get_wakes_on_put():
    buf = LatestFrameBuffer()
    threading.Timer(0.05, lambda: buf.put(Frame(7, np.zeros(1)))).start()
    t0 = time.monotonic()
    assert buf.get(2.0).index == 7
    assert time.monotonic() - t0 < 1.0


def test_slow_consumer_skips_frames_and_stays_current():
    stack = np.arange(200, dtype=np.float32).reshape(200, 1)
    results: list[int] = []

    def slow(frame: Frame) -> int:
        time.sleep(0.02)
        return frame.index

    handle = StreamHandle(ArraySource(stack, fps=400), slow, results.append).start()
    time.sleep(0.4)
    handle.stop()
    assert results == sorted(results)
    assert handle.stats.dropped > 0
    # the consumer lags the source by at most a couple of frames, never a growing queue
    assert handle.stats.read - results[-1] < 20


def test_processing_error_stops_stream_with_message():
    errors: list[str] = []

    def boom(frame: Frame) -> None:
        raise ValueError("bad frame")

    handle = StreamHandle(ArraySource(np.zeros((5, 2)), fps=100), boom, lambda r: None, errors.append).start()
    for _ in range(100):
        if errors:
            break
        time.sleep(0.01)
    handle.stop()
    assert errors and "could not be processed (bad frame)" in errors[0]
    assert not handle.running


def test_end_of_source_ends_stream():
    results = []
    handle = StreamHandle(ArraySource(np.zeros((3, 1))), lambda f: f.index, results.append).start()
    handle._worker.join(2)
    assert not handle.running and results[-1] == 2
