"""Where things live: shipped models/resources (source tree or PyInstaller bundle) and the user's writable data."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def install_root() -> Path:
    """The folder holding models/ and resources/: the repo in development, _MEIPASS in a frozen bundle."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parents[2]


def builtin_models_dir() -> Path:
    """The shared zoo root for models several plug-ins use; a plug-in's own models live in its folder."""
    return install_root() / "models"


def resources_dir() -> Path:
    return install_root() / "resources"


def user_home() -> Path:
    """Writable per-user data: $VITASCOPE_HOME, else $XDG_DATA_HOME/vitascope, else ~/.local/share/vitascope."""
    env = os.environ.get("VITASCOPE_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "vitascope"


def user_models_dir() -> Path:
    return user_home() / "models"


def jobs_dir() -> Path:
    return user_home() / "jobs"


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False))
