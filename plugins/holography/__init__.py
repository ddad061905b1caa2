"""Holography plug-in: live digital holographic microscopy — every frame refocused at the z a tiny ViT (or the
classical sweep) predicts. Qt-free physics engine (optics, simulator, reconstruction, autofocus, readers, sources)."""

from app.core.registry import load_plugin

plugin = load_plugin(__name__)  # everything else is in vitascope.toml
