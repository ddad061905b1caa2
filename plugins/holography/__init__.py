"""Holography plug-in: Qt-free physics engine (optics presets, propagation, simulator, reconstruction, autofocus,
readers and frame sources) for live digital holographic microscopy."""
