"""Example inputs follow the card: a square `preprocess.size` or [height, width] for the image dims."""

from __future__ import annotations

from app.core.card import ModelCard, TensorSpec
from app.core.zoo import example_inputs


def _card(size) -> ModelCard:
    image = TensorSpec("image", ("batch", 1, "height", "width"))
    return ModelCard(id="m", task="t.x", version="1", license="MIT", sha256="0" * 64, bytes=1, inputs=[image],
                     outputs=[TensorSpec("logits", ("batch", 4))], preprocess={"size": size})


def test_square_and_rectangular_sizes():
    assert example_inputs(_card(64))[0].shape == (1, 1, 64, 64)
    assert example_inputs(_card([256, 352]), batch=2)[0].shape == (2, 1, 256, 352)
