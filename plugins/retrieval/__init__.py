"""Retrieval plug-in: index folders of images, find the most similar ones to a query image (fine-grained and
re-identification search with a DCAL-trained tiny ViT), and evaluate embedders on labelled layouts."""

from app.core.registry import load_plugin

plugin = load_plugin(__name__)  # everything else is in vitascope.toml
