"""The demo plug-in: a live stream of generated shapes classified by the shipped tiny ViT (`demo.shapes`).
It exercises the zoo, streams and jobs end to end until the domain plug-ins land."""

from __future__ import annotations

import argparse
from typing import Any

from app.core.plugin_api import API_VERSION, Host, PluginInfo

from .engine import TASK, DemoEngine


class DemoPlugin:
    info = PluginInfo(id="demo", name="Demo: shapes", version="0.1.0", api_version=API_VERSION,
                      description="Generated shapes classified live by a tiny ViT.", tasks=(TASK,))

    def create_engine(self, host: Host) -> DemoEngine:
        return DemoEngine(host)

    def create_widget(self, host: Host, engine: DemoEngine) -> Any:
        from .widget import DemoWidget

        return DemoWidget(host, engine)

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from .cli import add_cli

        add_cli(subparsers)


plugin = DemoPlugin()
