"""The allowlist of "package.module:function" entry points a job spec or recipe may name (job kinds, data
entries): the app's own plus those installed plug-ins declare. Anything else is refused before it is imported."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from typing import Any

from .errors import JobError, VitascopeError

ENTRY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
APP_ENTRIES = frozenset({"app.train.wizard_job:run", "app.train.realft_job:run"})  # job kinds the app itself provides
_registered: set[str] = set()
_plugin_entries: frozenset[str] | None = None
_lock = threading.Lock()


def register_entry(entry: str) -> None:
    """Allow `entry` in this process (code that defines a job or data function registers it; specs cannot)."""
    if not ENTRY_RE.match(entry):
        raise ValueError(f"not a 'package.module:function' entry point: {entry!r}")
    _registered.add(entry)


def plugin_entries() -> frozenset[str]:
    """Entries of installed plug-ins: every train task's data_entry, folder_entry, job and held-out entry and
    PluginInfo.entries, all from the plug-ins' manifests. Discovered once per process."""
    global _plugin_entries
    with _lock:
        if _plugin_entries is None:
            from .registry import discover
            from .wizard_spec import available_tasks

            plugins = discover().plugins
            found: set[str] = set()
            for plugin in plugins:
                found.update(getattr(plugin.info, "entries", ()))
            for task in available_tasks(plugins):
                found.update(e for e in (task.data_entry, task.folder_entry, task.job) if e)
                held = task.heldout.get("entry") if isinstance(task.heldout, dict) else None
                if isinstance(held, str):
                    found.add(held)
            _plugin_entries = frozenset(found)
        return _plugin_entries


def allowed_entries() -> frozenset[str]:
    return APP_ENTRIES | frozenset(_registered) | plugin_entries()


def check_entry(entry: object, what: str = "entry point", error: type[VitascopeError] = JobError) -> str:
    """Return `entry` if the app or an installed plug-in registered it; raise `error` (one line) otherwise.
    Nothing is imported here beyond the plug-ins themselves."""
    if not isinstance(entry, str) or not ENTRY_RE.match(entry):
        raise error(f"job spec: {what} must be 'package.module:function', got {str(entry)[:60]!r}")
    if entry not in allowed_entries():
        raise error(f"job spec: {what} {entry!r} is not registered by the app or an installed plug-in; refused")
    return entry


def resolve_entry(entry: object, what: str = "data entry", error: type[VitascopeError] = JobError,
                  check: bool = True) -> Callable[..., Any]:
    """'package.module:function' → the function. With `check`, `entry` must be registered (checked before anything
    is imported); `error` (one line, naming `what`) if it is not, cannot be imported or is not callable."""
    if check:
        check_entry(entry, what, error)
    elif not isinstance(entry, str) or not ENTRY_RE.match(entry):
        raise error(f"{what} must be 'package.module:function', got {str(entry)[:60]!r}")
    module, _, attr = str(entry).partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise error(f"{what} {entry!r} cannot be loaded ({e})") from None
    if not callable(obj):
        raise error(f"{what} {entry!r} is not a function")
    return obj
