"""User-facing errors: each carries one line that names the file or thing and what is wrong."""

from __future__ import annotations


class VitascopeError(Exception):
    """A problem the user can act on; the CLI prints str(err) on one line and exits 2."""


class BadInput(VitascopeError):
    """An input file or value that cannot be used (corrupt, truncated, wrong shape, NaN...)."""


class ModelError(VitascopeError):
    """A model folder whose card, checksum or inputs/outputs do not match."""


class JobError(VitascopeError):
    """A job that could not start or whose worker broke the event protocol."""


class Cancelled(Exception):
    """Raised inside a job when its CancelToken was set; not an error."""
