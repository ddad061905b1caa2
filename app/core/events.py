"""Progress events as human-readable lines (the CLI's and the training ranks' stderr)."""

from __future__ import annotations

import sys

from .jobs import ProgressEvent


def _fmt(values: dict[str, float]) -> str:
    return " ".join(f"{k} {v:.4g}" for k, v in values.items())


def format_event(ev: ProgressEvent) -> str:
    """`[event] step/total name value … path message` (the message only for events that carry news)."""
    where = f" {ev.step}/{ev.total}" if ev.step is not None and ev.total else ""
    parts = [f"[{ev.event}]{where}"]
    if ev.values:
        parts.append(_fmt(ev.values))
    if ev.path:
        parts.append(ev.path)
    if ev.message and ev.event in ("started", "failed", "cancelled", "artifact"):
        parts.append(ev.message)
    return " ".join(parts)


def print_event(ev: ProgressEvent) -> None:
    """A human-readable progress line on stderr."""
    sys.stderr.write(format_event(ev) + "\n")
    sys.stderr.flush()
