"""Retrieval plug-in: index folders of images, find the most similar ones to a query image (fine-grained and
re-identification search with a DCAL-trained tiny ViT), and evaluate embedders on labelled layouts."""

from __future__ import annotations

import argparse
from typing import Any

from app.core.plugin_api import API_VERSION, Host, PluginInfo

TASK = "retrieval.embed"


class RetrievalPlugin:
    info = PluginInfo(id="retrieval", name="Image retrieval", version="0.1.0", api_version=API_VERSION,
                      description="Index image folders and find similar images (fine-grained search and "
                                  "re-identification) with a tiny DCAL ViT embedder; re-ID/FGVC evaluation.",
                      tasks=(TASK,),
                      entries=("app.train.dcal_train:train_job", "plugins.retrieval.synthetic:make_split"))

    def create_engine(self, host: Host) -> Any:
        from .engine import RetrievalEngine

        return RetrievalEngine(host)

    def create_widget(self, host: Host, engine: Any) -> Any:
        from .widget import RetrievalWidget

        return RetrievalWidget(host, engine)

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from .cli import add_cli

        add_cli(subparsers)


plugin = RetrievalPlugin()
