"""Silence third-party libraries' own stderr chatter (OpenCV, its FFmpeg backend, PIL): the one-line message the
app prints is what the user should see; `-v` leaves the libraries' logging as it is."""

from __future__ import annotations

import logging
import os
import sys
import warnings

ENV_DEFAULTS = {
    "OPENCV_LOG_LEVEL": "OFF",  # cv2's own logging (e.g. "[ WARN] ... grfmt_png.cpp")
    "OPENCV_FFMPEG_LOGLEVEL": "-8",  # AV_LOG_QUIET: FFmpeg's "[avi @ 0x...] ..." lines on broken videos
    "OPENCV_VIDEOIO_DEBUG": "0",
}


def silence_libraries() -> None:
    """Set the libraries' log levels to silent: env defaults for what is read at first use, and the runtime
    switches of modules already imported. Call before decoding anything."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        try:
            cv2.setLogLevel(0)  # LOG_LEVEL_SILENT
        except Exception:  # an unusual build without the switch: the env default still applies
            pass
    logging.getLogger("PIL").setLevel(logging.WARNING)
    try:
        from PIL import Image

        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own pixel limit speaks first
    except ImportError:
        pass
