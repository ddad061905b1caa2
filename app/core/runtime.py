"""onnxruntime session factory: CPU provider, 2 intra-op threads by default, warm-up on dummy input."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)
DEFAULT_THREADS = 2
_NP_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
              "tensor(int32)": np.int32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
              "tensor(bool)": np.bool_}


def default_threads() -> int:
    env = os.environ.get("VITASCOPE_ORT_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return DEFAULT_THREADS


def create_session(model: str | Path | bytes, threads: int | None = None, warmup: bool = True):
    """An InferenceSession on the CPU; raises ModelError (one line) if onnxruntime refuses the file."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # Spinning worker threads steal the core that frame readers and FFTs need: measured on the holography model
    # with the other core busy, 6.2 ms spinning vs 3.9 ms not (quiet machine: 3.3 vs 3.5 ms). VITASCOPE_ORT_SPIN=1
    # turns it back on.
    so.add_session_config_entry("session.intra_op.allow_spinning", os.environ.get("VITASCOPE_ORT_SPIN", "0"))
    source = model if isinstance(model, bytes) else str(model)
    try:
        sess = ort.InferenceSession(source, sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for every kind of bad file
        where = "model" if isinstance(model, bytes) else str(model)
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise ModelError(f"{where}: onnxruntime cannot load it ({first[:200]})") from None
    if warmup:
        try:
            warm_up(sess)
        except Exception as e:
            log.warning("warm-up failed: %s", e)
    return sess


def dummy_inputs(sess, free_dim: int = 1, hw_default: int = 64) -> dict[str, np.ndarray]:
    """Zeros for every input; free dims get 1 (batch-like) or `hw_default` for later dims."""
    feeds = {}
    for inp in sess.get_inputs():
        shape = []
        for i, d in enumerate(inp.shape):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            else:
                shape.append(free_dim if i == 0 else hw_default)
        feeds[inp.name] = np.zeros(shape, dtype=_NP_DTYPES.get(inp.type, np.float32))
    return feeds


def warm_up(sess, runs: int = 2) -> None:
    feeds = dummy_inputs(sess)
    for _ in range(runs):
        sess.run(None, feeds)


def time_runs(sess, feeds: dict[str, np.ndarray], runs: int, warmup: int = 5) -> list[float]:
    """Wall time in ms of `runs` calls after `warmup` untimed ones (the one timing loop of models and benches)."""
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def run(sess, feeds: dict[str, np.ndarray], outputs: Sequence[str] | None = None) -> list[np.ndarray]:
    return sess.run(list(outputs) if outputs else None, feeds)
