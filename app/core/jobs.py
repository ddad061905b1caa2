"""Job contracts shared by the GUI, the CLI and the worker: JobSpec, ProgressEvent, CancelToken and the
JSON-lines event codec (format: docs/formats.md)."""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import Cancelled, JobError

EVENT_KINDS = ("started", "progress", "metric", "checkpoint", "artifact", "finished", "failed", "cancelled")
TERMINAL_EVENTS = ("finished", "failed", "cancelled")


@dataclass
class JobSpec:
    """What a worker process should run. `kind` selects the job function; `params` are its arguments."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    out_dir: str = ""
    name: str = ""
    seed: int = 0
    resume: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        from .validate import check_fields, dataclass_types

        if not isinstance(data, dict) or "kind" not in data:
            raise JobError("job spec: expected a JSON object with a 'kind'")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise JobError(f"job spec: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        check_fields(data, dataclass_types(cls), "job spec", JobError)
        if not data["kind"]:
            raise JobError("job spec: kind is empty")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> JobSpec:
        from .validate import load_json, read_text_file

        p = Path(path)
        text = read_text_file(p, "job spec", "not a readable JSON job spec", JobError)
        data = load_json(text, f"{p}: not a readable JSON job spec", JobError)
        try:
            return cls.from_dict(data)
        except JobError as e:
            raise JobError(f"{p}: {e}") from None

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_json(), encoding="utf-8")
        return p


@dataclass
class ProgressEvent:
    """One worker event. `values` holds losses/metrics; `path` an artefact or checkpoint."""

    event: str
    step: int | None = None
    total: int | None = None
    values: dict[str, float] = field(default_factory=dict)
    path: str | None = None
    message: str | None = None
    time: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.event not in EVENT_KINDS:
            raise JobError(f"unknown job event {self.event!r}")

    @property
    def terminal(self) -> bool:
        return self.event in TERMINAL_EVENTS

    @property
    def fraction(self) -> float | None:
        if self.step is None or not self.total:
            return None
        return min(1.0, max(0.0, self.step / self.total))


def encode_event(ev: ProgressEvent) -> str:
    """One JSON object on one line (no trailing newline). Non-finite values become null."""
    d: dict[str, Any] = {"event": ev.event, "time": round(ev.time, 3)}
    if ev.step is not None:
        d["step"] = int(ev.step)
    if ev.total is not None:
        d["total"] = int(ev.total)
    if ev.values:
        d["values"] = {k: (float(v) if math.isfinite(float(v)) else None) for k, v in ev.values.items()}
    if ev.path is not None:
        d["path"] = str(ev.path)
    if ev.message is not None:
        d["message"] = str(ev.message)
    return json.dumps(d, separators=(",", ":"), allow_nan=False)


def decode_event(line: str) -> ProgressEvent:
    """Parse one line written by encode_event; raise JobError on anything else."""
    try:
        d = json.loads(line)
    except json.JSONDecodeError:
        raise JobError(f"worker wrote a line that is not a JSON event: {line[:80]!r}") from None
    if not isinstance(d, dict) or not isinstance(d.get("event"), str):
        raise JobError(f"worker wrote a JSON line without an 'event': {line[:80]!r}")
    values = {k: (float("nan") if v is None else float(v)) for k, v in (d.get("values") or {}).items()}
    return ProgressEvent(
        event=d["event"],
        step=d.get("step"),
        total=d.get("total"),
        values=values,
        path=d.get("path"),
        message=d.get("message"),
        time=float(d.get("time", time.time())),
    )


class CancelToken:
    """Cooperative cancellation: the job polls `cancelled` or calls `check()` between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` s; return True early if cancelled."""
        return self._event.wait(timeout)
