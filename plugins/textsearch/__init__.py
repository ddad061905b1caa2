"""Text-to-image search plug-in: index image folders with a CLIP-style model (two ONNX encoders + the CLIP
tokenizer) and search them by text, by image, or by weighted combinations with negatives."""

from app.core.registry import load_plugin

plugin = load_plugin(__name__)  # everything else is in vitascope.toml
