"""Run a JobSpec in a worker process (`vitascope worker SPEC.json`), read its JSON-lines events on a thread,
cancel by sending "stop" and closing stdin, and report a crashed or killed worker as failed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .errors import JobError
from .jobs import JobSpec, ProgressEvent, decode_event

log = logging.getLogger(__name__)


def worker_command(spec_path: Path) -> list[str]:
    """The same executable relaunched as a worker: the frozen app itself, or this Python with `-m app`."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "worker", str(spec_path)]
    return [sys.executable, "-m", "app", "worker", str(spec_path)]


class ProcessJob:
    """One worker process. `on_event` is called on the reader thread for every event, including a synthetic
    terminal one ("failed") when the process dies without saying how it ended."""

    def __init__(self, spec: JobSpec, on_event: Callable[[ProgressEvent], None],
                 spec_path: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.spec = spec
        self._on_event = on_event
        out = Path(spec.out_dir) if spec.out_dir else None
        if spec_path is None:
            if out is None:
                raise JobError("job spec needs an out_dir")
            out.mkdir(parents=True, exist_ok=True)
            spec_path = out / "job.json"
        self.spec_path = spec.save(spec_path)
        self._env = env
        self.proc: subprocess.Popen | None = None
        self.last_event: ProgressEvent | None = None
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self._reader: threading.Thread | None = None
        self._err_reader: threading.Thread | None = None
        self._cancel_sent = False

    def start(self) -> ProcessJob:
        env = dict(os.environ)
        env.update(self._env or {})
        env.setdefault("PYTHONUNBUFFERED", "1")
        # the worker yields the CPU to the app: training at a lower priority keeps the GUI's event loop on time
        env.setdefault("VITASCOPE_WORKER_NICE", "5")
        try:
            self.proc = subprocess.Popen(worker_command(self.spec_path), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                         bufsize=1, env=env)
        except OSError as e:
            raise JobError(f"cannot start the worker process ({e.strerror or e})") from None
        self._reader = threading.Thread(target=self._read_events, name="procjob-events", daemon=True)
        self._err_reader = threading.Thread(target=self._read_stderr, name="procjob-stderr", daemon=True)
        self._reader.start()
        self._err_reader.start()
        return self

    def _emit(self, ev: ProgressEvent) -> None:
        self.last_event = ev
        try:
            self._on_event(ev)
        except Exception:
            log.exception("job event handler failed")

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            self.stderr_tail.append(line.rstrip())

    def _read_events(self) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = decode_event(line)
            except JobError as e:
                log.warning("%s", e)
                continue
            self._emit(ev)
        code = self.proc.wait()
        if self._err_reader:
            self._err_reader.join(2)
        if self.last_event is None or not self.last_event.terminal:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            tail = next((s for s in reversed(self.stderr_tail) if s.strip()), "")
            self._emit(ProgressEvent("failed", message=f"worker {how}" + (f": {tail}" if tail else "")))

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cancel(self) -> None:
        """Ask the worker to stop: it writes a checkpoint, emits "cancelled" and exits."""
        if not self.proc or self._cancel_sent:
            return
        self._cancel_sent = True
        try:
            assert self.proc.stdin
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the process and the event reader; True when both are done."""
        if not self.proc:
            return True
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        if self._reader:
            self._reader.join(timeout)
        return not (self._reader and self._reader.is_alive())

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel, wait, and kill if the worker does not stop in time."""
        self.cancel()
        if not self.wait(timeout):
            log.warning("worker did not stop within %.0f s; killing it", timeout)
            self.kill()
            self.wait(5)
