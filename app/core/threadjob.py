"""In-process jobs on a thread with a CancelToken; callbacks go through `dispatch` (each host passes the post to
its UI thread: the Qt thread in the GUI, HeadlessHost's callback thread; the default calls them directly)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .errors import Cancelled, VitascopeError
from .jobs import CancelToken, ProgressEvent
from .plugin_api import JobFn, JobHandle

log = logging.getLogger(__name__)
Dispatch = Callable[[Callable[[], None]], None]


def _direct(fn: Callable[[], None]) -> None:
    fn()


def start_thread_job(name: str, fn: JobFn, on_result: Callable[[Any], None] | None = None,
                     on_event: Callable[[ProgressEvent], None] | None = None,
                     on_error: Callable[[str], None] | None = None,
                     dispatch: Dispatch = _direct) -> JobHandle:
    token = CancelToken()

    def emit(ev: ProgressEvent) -> None:
        if on_event:
            dispatch(lambda: on_event(ev))

    def body() -> None:
        try:
            result = fn(token, emit)
        except Cancelled:
            emit(ProgressEvent("cancelled", message=f"{name}: cancelled"))
            return
        except VitascopeError as e:
            msg = str(e)
        except Exception as e:  # a job's bug is reported, not fatal
            log.exception("job %s failed", name)
            msg = f"{name} failed: {e.__class__.__name__}: {e}"
        else:
            if token.cancelled:
                emit(ProgressEvent("cancelled", message=f"{name}: cancelled"))
            else:
                emit(ProgressEvent("finished"))
                if on_result:
                    dispatch(lambda: on_result(result))
            return
        emit(ProgressEvent("failed", message=msg))
        if on_error:
            dispatch(lambda: on_error(msg))

    thread = threading.Thread(target=body, name=f"job-{name}", daemon=True)
    thread.start()

    def wait(timeout: float | None = None) -> bool:
        thread.join(timeout)
        return not thread.is_alive()

    return JobHandle(name, token, _done=lambda: not thread.is_alive(), _wait=wait)
