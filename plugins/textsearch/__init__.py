"""Text-to-image search plug-in: index image folders with a CLIP-style model (two ONNX encoders + the CLIP
tokenizer) and search them by text, by image, or by weighted combinations with negatives."""
