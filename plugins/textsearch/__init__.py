"""Text-to-image search plug-in: index image folders with a CLIP-style model (two ONNX encoders + the CLIP
tokenizer) and search them by text, by image, or by weighted combinations with negatives."""

from __future__ import annotations

import argparse
from typing import Any

from app.core.plugin_api import API_VERSION, Host, PluginInfo


class TextSearchPlugin:
    info = PluginInfo(id="textsearch", name="Text search", version="0.1.0", api_version=API_VERSION,
                      description="Search image folders by what they show: type a description, give an example "
                                  "image, or combine them ('2:red car' + photo.jpg - night). Needs a CLIP model "
                                  "(`vitascope clip convert` turns an open_clip or TinyCLIP checkpoint into one).")

    def create_engine(self, host: Host) -> Any:
        from .engine import TextSearchEngine

        return TextSearchEngine(host)

    def create_widget(self, host: Host, engine: Any) -> Any:
        from .widget import TextSearchWidget

        return TextSearchWidget(host, engine)

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from .cli import add_cli

        add_cli(subparsers)


plugin = TextSearchPlugin()
