"""Fixtures for the Qt-free runtime: tiny ONNX model folders built with the onnx helper API (no torch)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from app.core.card import ModelCard, TensorSpec, sha256_file, write_card
from tests.helpers import save_onnx_graph


def build_linear_onnx(path: Path, n_in: int = 12, n_out: int = 4, seed: int = 0) -> np.ndarray:
    """A (batch, n_in) → softmax-free linear (batch, n_out) model; returns its weight matrix."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).normal(size=(n_in, n_out)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["logits"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_out])],
        [numpy_helper.from_array(w, "w")],
    )
    save_onnx_graph(graph, path)
    return w


@pytest.fixture
def make_model_folder(tmp_path: Path) -> Callable[..., Path]:
    def make(model_id: str = "tiny-linear", task: str = "test.linear", root: Path | None = None,
             n_in: int = 12, n_out: int = 4) -> Path:
        folder = (root or tmp_path / "src") / model_id
        folder.mkdir(parents=True)
        w = build_linear_onnx(folder / "model.onnx", n_in, n_out)
        x = np.random.default_rng(1).normal(size=(2, n_in)).astype(np.float32)
        np.savez(folder / "golden.npz", input_0=x, output_0=x @ w)
        card = ModelCard(
            id=model_id, task=task, version="1.0.0", license="MIT",
            sha256=sha256_file(folder / "model.onnx"), bytes=(folder / "model.onnx").stat().st_size,
            inputs=[TensorSpec("x", ("batch", n_in))], outputs=[TensorSpec("logits", ("batch", n_out))],
            labels=[f"c{i}" for i in range(n_out)],
            metrics=[{"name": "accuracy", "value": 0.5, "dataset": "none", "seed": 0}],
        )
        write_card(folder, card)
        return folder

    return make
