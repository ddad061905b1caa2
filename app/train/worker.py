"""The job worker process: `python -m app.train.worker SPEC.json` (or `vitascope worker SPEC.json`) runs one
JobSpec, writing one JSON event per line on stdout and logs on stderr; "stop" or EOF on stdin cancels.

Exit codes: 0 finished · 3 cancelled (a checkpoint was written; rerun with resume) · 1 failed (a "failed" event
with a one-line message was written) · 2 bad spec (one line on stderr, no events)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from app.core.entries import resolve_entry
from app.core.errors import JobError, VitascopeError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent, encode_event

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_BAD_SPEC, EXIT_CANCELLED = 0, 1, 2, 3
EventFn = Callable[[ProgressEvent], None]
JobFn = Callable[[JobSpec, EventFn, CancelToken], Any]


@dataclass
class _Job:
    run: JobFn
    validate: Callable[[JobSpec], None] | None = None


_JOBS: dict[str, _Job] = {}


def register_job(kind: str, fn: JobFn, validate: Callable[[JobSpec], None] | None = None) -> None:
    """Make `kind` runnable. `fn(spec, on_event, cancel)` emits events; if it returns without a terminal event
    the worker emits "finished". `validate(spec)` raises JobError for a bad spec (exit 2) before anything runs."""
    _JOBS[kind] = _Job(fn, validate)


def job_kinds() -> list[str]:
    _register_builtins()
    return sorted(_JOBS)


def _register_builtins() -> None:
    if "train" in _JOBS:
        return
    from . import clip_compress_job, pipeline, wizard_job

    _JOBS.setdefault("train", _Job(pipeline.train_job, pipeline.validate_train))
    _JOBS.setdefault("export", _Job(pipeline.export_job, pipeline.validate_export))
    _JOBS.setdefault("app.train.wizard_job:run", _Job(wizard_job.run, wizard_job.validate))
    _JOBS.setdefault("app.train.clip_compress_job:run", _Job(clip_compress_job.run, clip_compress_job.validate))


def prepare(spec: JobSpec) -> _Job:
    """Look up and validate the job for `spec`; JobError (a bad spec) otherwise."""
    _register_builtins()
    job = _JOBS.get(spec.kind)
    if job is None and ":" in spec.kind:  # "package.module:function": only entries the app or a plug-in declared
        job = _Job(resolve_entry(spec.kind, "job kind"))
    if job is None:
        raise JobError(f"job spec: unknown kind {spec.kind!r} (known: {', '.join(sorted(_JOBS))})")
    if job.validate:
        job.validate(spec)
    return job


def one_line(exc: BaseException) -> str:
    """A one-line message for an exception: VitascopeErrors as they are, others prefixed with their type."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, VitascopeError):
        return text or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def run_job(spec: JobSpec, on_event: EventFn, cancel: CancelToken, job: _Job | None = None) -> int:
    """Run a validated job in this process; return the exit code. Emits "failed" on an exception."""
    job = job or prepare(spec)
    terminal: list[str] = []

    def emit(ev: ProgressEvent) -> None:
        if ev.terminal:
            terminal.append(ev.event)
        on_event(ev)

    try:
        job.run(spec, emit, cancel)
    except VitascopeError as e:
        log.error("job failed: %s", one_line(e))
        emit(ProgressEvent("failed", message=one_line(e)))
    except Exception as e:  # the traceback goes to the worker's log (INFO), not to a quiet CLI's stderr
        log.error("job failed: %s", one_line(e), exc_info=log.isEnabledFor(logging.INFO))
        emit(ProgressEvent("failed", message=one_line(e)))
    if not terminal:
        emit(ProgressEvent("cancelled" if cancel.cancelled else "finished"))
    return {"finished": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(terminal[-1], EXIT_FAILED)


def watch_stdin(cancel: CancelToken, stream: IO[str] | None = None) -> threading.Thread | None:
    """A daemon thread that sets `cancel` on a "stop" line or at EOF (the parent closed the pipe or died)."""
    stream = stream if stream is not None else sys.stdin
    if stream is None:
        return None

    def reader() -> None:
        try:
            for line in stream:
                if line.strip().lower() == "stop":
                    log.info("stop requested on stdin")
                    break
        except (OSError, ValueError):
            pass
        cancel.cancel()

    t = threading.Thread(target=reader, name="stdin-watch", daemon=True)
    t.start()
    return t


def _event_stream() -> IO[str]:
    """Keep the real stdout for events only: events go to a dup of fd 1, while fd 1 and sys.stdout are
    pointed at stderr so that stray prints (ours, torch's, C libraries') cannot corrupt the protocol."""
    try:
        fd = os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        sys.stdout = sys.stderr
        return os.fdopen(fd, "w", encoding="utf-8", buffering=1)
    except (OSError, AttributeError, ValueError):  # no real file descriptors (embedded, tests)
        out = sys.stdout
        sys.stdout = sys.stderr
        return out


def lower_priority(increment: str) -> None:
    """Raise the process's nice value by `increment` (set by ProcessJob for workers started from the app)."""
    try:
        if increment and int(increment) > 0 and hasattr(os, "nice"):
            os.nice(int(increment))
    except (ValueError, OSError) as e:
        log.warning("cannot lower the worker's priority (%s)", e)


def main(spec_path: str) -> int:
    """Load the spec, run it, stream events; return the exit code (see the module docstring)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lower_priority(os.environ.get("VITASCOPE_WORKER_NICE", ""))
    try:
        spec = JobSpec.load(spec_path)
        job = prepare(spec)
    except VitascopeError as e:
        sys.stderr.write(f"{one_line(e)}\n")
        sys.stderr.flush()
        return EXIT_BAD_SPEC
    out = _event_stream()
    lock = threading.Lock()

    def on_event(ev: ProgressEvent) -> None:
        with lock:
            out.write(encode_event(ev) + "\n")
            out.flush()

    cancel = CancelToken()
    watch_stdin(cancel)
    code = run_job(spec, on_event, cancel, job)
    out.flush()
    return code


def cli(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: python -m app.train.worker SPEC.json\n")
        return EXIT_BAD_SPEC
    return main(args[0])


if __name__ == "__main__":  # run through the canonical module so register_job() calls land in one registry
    from app.train import worker as _worker

    sys.exit(_worker.cli())
