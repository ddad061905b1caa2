"""The jobs model: thread jobs and worker-process jobs with their state, progress, ETA and last message.
Events reach it on the Qt thread (through the Dispatcher); `cancel_all_and_join` is what closing the app calls."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.errors import VitascopeError
from app.core.jobs import JobSpec, ProgressEvent
from app.core.plugin_api import JobFn, JobHandle
from app.core.procjob import ProcessJob
from app.core.threadjob import start_thread_job

from .dispatch import Dispatcher
from .speed import SpeedMeter

log = logging.getLogger(__name__)
_ids = itertools.count(1)

RUNNING, CANCELLING = "running", "cancelling"
FINISHED, FAILED, CANCELLED = "finished", "failed", "cancelled"


@dataclass
class JobRecord:
    """What the panel shows about one job."""

    name: str
    kind: str  # "thread" | "process"
    state: str = RUNNING
    step: int | None = None
    total: int | None = None
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    id: int = field(default_factory=lambda: next(_ids))
    handle: Any = field(default=None, repr=False)  # JobHandle or ProcessJob
    meter: SpeedMeter = field(default_factory=SpeedMeter, repr=False)
    outcome: str = ""  # the terminal event's own message, kept apart from the progress messages
    fed: bool = field(default=False, repr=False)  # its events (a terminal one included) reach apply()

    @property
    def active(self) -> bool:
        return self.state in (RUNNING, CANCELLING)

    @property
    def fraction(self) -> float | None:
        if self.step is None or not self.total:
            return None
        return min(1.0, max(0.0, self.step / self.total))

    def seconds_per_step(self) -> float | None:
        """The measured speed of the current stage, after its warm-up; None before."""
        return self.meter.seconds_per_step()

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left at the speed measured after warm-up; None until it is known."""
        if not self.active or self.step is None or not self.total:
            return None
        return self.meter.eta_s(self.total, now)

    def elapsed_s(self, now: float | None = None) -> float:
        end = self.ended if self.ended is not None else (time.monotonic() if now is None else now)
        return max(0.0, end - self.started)

    def apply(self, ev: ProgressEvent, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if ev.step is not None:
            # a new stage (e.g. distillation after training) counts its own steps: measure its speed afresh
            new_stage = (ev.total is not None and ev.total != self.total) or (self.step is not None
                                                                              and ev.step < self.step)
            if new_stage:
                self.meter.reset()
            self.meter.add(ev.step, now)
            self.step = ev.step
        if ev.total is not None:
            self.total = ev.total
        if ev.message:
            self.message = ev.message
        elif ev.event == "metric" and ev.values:
            self.message = ", ".join(f"{k} {v:.4g}" for k, v in ev.values.items())
        elif ev.event in ("artifact", "checkpoint") and ev.path:
            self.message = f"{ev.event}: {Path(ev.path).name}"
        if ev.terminal and self.active:
            if ev.event == FINISHED and self.total:
                self.step = self.total
            self.end(ev.event, ev.message, now)

    def end(self, state: str, outcome: str | None = "", now: float | None = None) -> None:
        """Mark the job ended; its message becomes its final state (progress messages are stale by now)."""
        self.state = state
        self.ended = time.monotonic() if now is None else now
        self.outcome = outcome or ""
        self.message = final_message(self)


def final_message(rec: JobRecord) -> str:
    """"finished in 3:12", "cancelled at step 300/2400 after 1:05", "failed after 0:02: <reason>"."""
    took = fmt_duration(rec.elapsed_s())
    where = f" at step {rec.step}/{rec.total}" if rec.state != FINISHED and rec.step is not None and rec.total \
        else ""
    text = f"{rec.state}{where} {'in' if rec.state == FINISHED else 'after'} {took}"
    detail = rec.outcome.strip()
    if detail in (rec.state, f"{rec.name}: {rec.state}"):
        detail = ""
    if detail.lower().startswith(rec.state):
        return f"{detail} ({'in' if rec.state == FINISHED else 'after'} {took})"
    return f"{text}: {detail}" if detail else text


def fmt_duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class JobsModel(QObject):
    """All jobs of the session. `added(record)` and `changed(record)` are emitted on the Qt thread."""

    added = Signal(object)
    changed = Signal(object)

    def __init__(self, dispatch: Dispatcher, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dispatch = dispatch
        self.records: list[JobRecord] = []

    # thread jobs -------------------------------------------------------------------------------------------
    def run_thread_job(self, name: str, fn: JobFn, on_result: Callable[[Any], None] | None = None,
                       on_event: Callable[[ProgressEvent], None] | None = None,
                       on_error: Callable[[str], None] | None = None) -> JobHandle:
        """Start `fn` on a thread; every callback runs on the Qt thread; the job appears in the panel."""
        rec = JobRecord(name, "thread", fed=True)

        def event(ev: ProgressEvent) -> None:  # on the Qt thread
            self._apply(rec, ev)
            if on_event:
                on_event(ev)

        handle = start_thread_job(name, fn, on_result, event, on_error, dispatch=self.dispatch)
        return self.add_thread_job(handle, rec)

    def add_thread_job(self, handle: JobHandle, record: JobRecord | None = None) -> JobHandle:
        """Track a thread job. Without a record fed by its events, its end is noticed by `poll()`."""
        rec = record or JobRecord(handle.name, "thread")
        rec.handle = handle
        self.records.append(rec)
        self.added.emit(rec)
        return handle

    # process jobs ------------------------------------------------------------------------------------------
    def add_process_job(self, spec: JobSpec, on_event: Callable[[ProgressEvent], None] | None = None,
                        env: dict[str, str] | None = None) -> ProcessJob:
        """Start a worker process for `spec`; a worker that cannot start or dies shows as failed."""
        rec = JobRecord(spec.name or spec.kind, "process")

        def event(ev: ProgressEvent) -> None:  # on the reader thread
            def apply() -> None:
                self._apply(rec, ev)
                if on_event:
                    on_event(ev)

            self.dispatch(apply)

        job = ProcessJob(spec, event, env=env)
        rec.handle = job
        self.records.append(rec)
        self.added.emit(rec)
        try:
            job.start()
        except VitascopeError as e:
            log.warning("job %s: %s", rec.name, e)
            self._apply(rec, ProgressEvent("failed", message=str(e)))
        return job

    # control -----------------------------------------------------------------------------------------------
    def _apply(self, rec: JobRecord, ev: ProgressEvent) -> None:
        rec.apply(ev)
        self.changed.emit(rec)

    def cancel(self, rec: JobRecord) -> None:
        if not rec.active or rec.handle is None:
            return
        rec.handle.cancel()
        rec.state = CANCELLING
        rec.message = "cancelling…"
        self.changed.emit(rec)

    def poll(self) -> None:
        """Mark thread jobs tracked without events (add_thread_job) whose thread ended; jobs fed by events end
        with their terminal event, which may still be on its way when the thread is already done."""
        for rec in self.records:
            if rec.active and rec.kind == "thread" and not rec.fed and rec.handle is not None and rec.handle.done:
                cancelled = rec.handle.cancel_token.cancelled
                rec.end(CANCELLED if cancelled else FINISHED)
                self.changed.emit(rec)

    def running(self) -> list[JobRecord]:
        return [r for r in self.records if r.active and r.handle is not None and not self._ended(r)]

    @staticmethod
    def _ended(rec: JobRecord) -> bool:
        h = rec.handle
        return bool(h.done) if isinstance(h, JobHandle) else not h.running

    def clear_finished(self) -> list[JobRecord]:
        gone = [r for r in self.records if not r.active]
        self.records = [r for r in self.records if r.active]
        return gone

    def cancel_all_and_join(self, timeout: float = 10.0) -> bool:
        """Cancel every job, wait for threads and processes (killing workers that overrun); True if all ended."""
        live = [r for r in self.records if r.handle is not None and not self._ended(r)]
        for rec in live:
            rec.handle.cancel()
        deadline = time.monotonic() + timeout
        ok = True
        for rec in live:
            left = max(0.1, deadline - time.monotonic())
            if isinstance(rec.handle, ProcessJob):
                rec.handle.stop(left)
                done = rec.handle.wait(1.0)
            else:
                done = rec.handle.wait(left)
            if not done:
                log.warning("job %s did not stop in time", rec.name)
                ok = False
            if rec.active:
                rec.end(CANCELLED if done else FAILED, "on exit" if done else "did not stop in time")
                self.changed.emit(rec)
        return ok
