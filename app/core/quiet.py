"""Silence third-party libraries' own stderr chatter (OpenCV, its FFmpeg backend, PIL): the one-line message the
app prints is what the user should see; `-v` leaves the libraries' logging as it is."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator

ENV_DEFAULTS = {
    "OPENCV_LOG_LEVEL": "OFF",  # cv2's own logging (e.g. "[ WARN] ... grfmt_png.cpp")
    "OPENCV_FFMPEG_LOGLEVEL": "-8",  # AV_LOG_QUIET: FFmpeg's "[avi @ 0x...] ..." lines on broken videos
    "OPENCV_VIDEOIO_DEBUG": "0",
}


_silenced = False
_fd_lock = threading.Lock()


def silence_libraries() -> None:
    """Set the libraries' log levels to silent: env defaults for what is read at first use, and the runtime
    switches of modules already imported. Call before decoding anything."""
    global _silenced
    _silenced = True
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        try:
            cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
        except Exception:  # an unusual build without the switch: the env default still applies
            pass
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)  # addressed to developers (e.g. pandas via wfdb)
    logging.getLogger("PIL").setLevel(logging.WARNING)
    try:
        from PIL import Image

        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own pixel limit speaks first
    except ImportError:
        pass


@contextlib.contextmanager
def quiet_c_stderr() -> Iterator[None]:
    """Around a call into a C library that prints to fd 2 by itself with no switch to turn it off (libpng's
    default error handler: "libpng error: IDAT: incorrect data check"): fd 2 points at /dev/null meanwhile.
    Only once silence_libraries() ran (the CLI and the GUI without -v); otherwise a no-op."""
    if not _silenced:
        yield
        return
    with _fd_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
        except (OSError, ValueError, AttributeError):
            yield
            return
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
