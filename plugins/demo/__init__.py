"""The demo plug-in: a live stream of generated shapes classified by the shipped tiny ViT (`demo.shapes`).
It exercises the zoo, streams and jobs end to end until the domain plug-ins land."""

from app.core.registry import load_plugin

plugin = load_plugin(__name__)  # everything else is in vitascope.toml
