"""The wizard's Evaluate step, Qt- and torch-free: a new model folder against its parent on the same held-out
data with onnxruntime (2 threads): headline metric, latency (batch 1), file size and params."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import runtime
from .card import MODEL_FILE, read_card
from .entries import check_entry, resolve_entry
from .errors import BadInput
from .plugin_api import TrainTask
from .problems import scorer

log = logging.getLogger(__name__)


@dataclass
class EvalRow:
    """One model's results. `pred`/`target` are kept for plots (regression: predicted vs true)."""

    role: str  # "new" | "parent"
    model_id: str
    metric: str
    value: float
    latency_ms: float
    bytes: int
    params: int
    n: int
    dataset: str
    per_class: dict[str, float] = field(default_factory=dict)
    pred: np.ndarray | None = field(default=None, repr=False)
    target: np.ndarray | None = field(default=None, repr=False)


def _call_entry(entry: str, seed: int, params: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """Call a task's data entry (the plug-in declared it; entries named by a job are checked by the caller)."""
    fn = resolve_entry(entry, "data entry", BadInput, check=False)
    return tuple(np.asarray(a) for a in fn(seed=seed, **params))


def heldout_data(task: TrainTask, job_params: dict[str, Any], size: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray, str]:
    """(x, y, description): the card's held-out data (export.heldout) with images of `size` where the task has an
    image-size knob; for the user's own data, its validation split (said so in the description)."""
    train = job_params.get("train", job_params)
    data = dict(train.get("data", {}))
    held = dict(dict(train.get("export", {})).get("heldout", {}))
    if held:
        entry, seed = held.get("entry", data.get("entry", task.data_entry)), int(held.get("seed", 0))
        params = dict(held.get("params", {}))
        where = f"{entry} seed={seed} (held-out)"
    else:
        entry, seed = data.get("entry", task.data_entry), int(data.get("seed", 0))
        params = dict(data.get("params", {}))
        where = f"{entry} seed={seed} (validation split, not held-out)"
    if size and task.image_size_param and entry == task.data_entry:
        params[task.image_size_param] = int(size)
    if entry != task.data_entry:  # named by the job's params, not by the task's plug-in: only registered entries
        check_entry(entry, "held-out data entry", BadInput)
    _, _, x, y = _call_entry(entry, seed, params)
    if len(x) == 0:
        raise BadInput(f"held-out data from {entry} is empty")
    return x.astype(np.float32), y, where


def run_onnx(sess: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
    return np.concatenate(outs)


def score(out: np.ndarray, y: np.ndarray, problem: str, labels: list[str] | None = None
          ) -> tuple[str, float, dict[str, float]]:
    """(metric name, value, per-class values): the headline metric of the task's objective (app.core.metrics)."""
    sc = scorer(problem)
    value, per = sc.score(out, y, labels)
    return sc.metric, value, per


def evaluate_folder(folder: str | Path, role: str, task: TrainTask, job_params: dict[str, Any],
                    threads: int = 2, latency_runs: int = 30) -> EvalRow:
    """Run one model folder on the held-out data at its own input size."""
    folder = Path(folder)
    card = read_card(folder)
    size = int(card.preprocess.get("size", 0) or 0) or None
    x, y, where = heldout_data(task, job_params, size)
    sess = runtime.create_session(folder / MODEL_FILE, threads=threads, warmup=False)
    out = run_onnx(sess, x)
    metric, value, per = score(out, y, task.problem, card.labels)
    times = runtime.time_runs(sess, {sess.get_inputs()[0].name: x[:1]}, latency_runs, warmup=3)
    plots = scorer(task.problem).plots
    return EvalRow(role, card.id, metric, value, float(np.median(times)), int(card.bytes), int(card.params),
                   int(len(x)), where, per, out.reshape(len(out), -1)[:, 0] if plots else None,
                   y.reshape(len(y), -1)[:, 0] if plots else None)


def compare(task: TrainTask, job_params: dict[str, Any], new: str | Path, parent: str | Path | None = None,
            threads: int = 2) -> list[EvalRow]:
    """The new model and (if given) its parent, on the same held-out data."""
    rows = [evaluate_folder(new, "new", task, job_params, threads)]
    if parent:
        try:
            rows.append(evaluate_folder(parent, "parent", task, job_params, threads))
        except Exception as e:  # the comparison is a courtesy: a parent that cannot run does not fail the page
            log.warning("parent %s could not be evaluated: %s", parent, e)
    return rows
