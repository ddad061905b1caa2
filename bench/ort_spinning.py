"""ORT intra-op thread spinning on vs off for every shipped model, on a quiet machine and with the other core
kept busy by a spinning child process (interleaved rounds, same run). Why app.core.runtime turns spinning off.

    .venv/bin/python bench/ort_spinning.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import onnxruntime as ort

from app.core.zoo import Zoo, example_inputs


def session(path: str, spin: bool) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def measure(label: str) -> None:
    for entry in Zoo().entries():
        if entry.card is None:
            continue
        feeds = {s.name: x for s, x in zip(entry.card.inputs, example_inputs(entry.card, batch=3), strict=True)}
        sessions = {spin: session(str(entry.folder / "model.onnx"), spin) for spin in (True, False)}
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(7):
            for spin, sess in sessions.items():
                t0 = time.perf_counter()
                for _ in range(50):
                    sess.run(None, feeds)
                times[spin].append((time.perf_counter() - t0) / 50 * 1e3)
        on, off = statistics.median(times[True]), statistics.median(times[False])
        print(f"{label:10s} {entry.id:24s} spin {on:7.3f} ms   no spin {off:7.3f} ms   ratio off/on {off / on:.2f}")


def main() -> None:
    measure("quiet")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        measure("core busy")
    finally:
        busy.kill()


if __name__ == "__main__":
    main()
