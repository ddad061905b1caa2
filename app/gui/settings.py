"""QSettings for the app (organisation and application "Vitascope", INI format so tests can redirect it)."""

from __future__ import annotations

import json
import logging
from typing import Any

from PySide6.QtCore import QSettings

log = logging.getLogger(__name__)
ORG = "Vitascope"
APP = "Vitascope"


def app_settings() -> QSettings:
    """The user's settings file; `QSettings.setPath(IniFormat, UserScope, dir)` redirects it (tests)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def load_plugin_settings(plugin_id: str) -> dict[str, Any]:
    """A plug-in's values, stored as one JSON document under `plugins/<id>` so types survive the round trip."""
    raw = app_settings().value(f"plugins/{plugin_id}", "")
    if not raw:
        return {}
    try:
        data = json.loads(str(raw))
    except ValueError:
        log.warning("settings of plug-in %s are unreadable; starting from defaults", plugin_id)
        return {}
    return data if isinstance(data, dict) else {}


def save_plugin_settings(plugin_id: str, values: dict[str, Any]) -> None:
    s = app_settings()
    s.setValue(f"plugins/{plugin_id}", json.dumps(values, default=str))
    s.sync()
