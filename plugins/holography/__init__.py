"""Holography plug-in: live digital holographic microscopy — every frame refocused at the z a tiny ViT (or the
classical sweep) predicts. Qt-free physics engine (optics, simulator, reconstruction, autofocus, readers, sources)."""

from __future__ import annotations

import argparse
from typing import Any

from app.core.plugin_api import API_VERSION, Host, PluginInfo

TASK = "holo.autofocus"


class HolographyPlugin:
    info = PluginInfo(id="holography", name="Holography (DHM)", version="0.1.0", api_version=API_VERSION,
                      description="Live DHM holograms refocused at the z a tiny ViT predicts; amplitude and phase.",
                      tasks=(TASK,))

    def create_engine(self, host: Host) -> Any:
        from .engine import HoloEngine

        return HoloEngine(host)

    def create_widget(self, host: Host, engine: Any) -> Any:
        from .widget import HoloWidget

        return HoloWidget(host, engine)

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from .cli import add_cli

        add_cli(subparsers)


plugin = HolographyPlugin()
