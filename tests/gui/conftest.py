"""GUI fixtures: isolated settings, tiny image-classifier model folders (onnx helper API, no torch),
and a factory for main windows that are always shut down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.card import ModelCard, TensorSpec, sha256_file, write_card
from app.core.registry import Registry, discover
from app.core.zoo import Zoo
from tests.helpers import save_onnx_graph

LABELS = ["circle", "square", "triangle", "cross"]


@pytest.fixture(autouse=True)
def _gui_setup(isolated_settings: Path) -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major")


def build_image_classifier(path: Path, n_out: int = 4, seed: int = 0) -> None:
    """(batch, 3, H, W) → mean colour → linear → (batch, n_out) logits; the class depends on the colour."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = (np.random.default_rng(seed).normal(size=(3, n_out)) * 4).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "colour-classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_out])],
        [numpy_helper.from_array(w, "w")],
    )
    save_onnx_graph(graph, path)


def make_model(root: Path, model_id: str = "tiny-shapes", task: str = "demo.shapes") -> Path:
    folder = root / model_id
    folder.mkdir(parents=True)
    build_image_classifier(folder / "model.onnx", len(LABELS))
    onnx_path = folder / "model.onnx"
    card = ModelCard(
        id=model_id, task=task, version="1.2.0", license="MIT",
        description="A test model: the mean colour of the image, linearly classified.",
        sha256=sha256_file(onnx_path), bytes=onnx_path.stat().st_size, params=12, opset=17,
        inputs=[TensorSpec("image", ("batch", 3, "height", "width"))],
        outputs=[TensorSpec("logits", ("batch", len(LABELS)))],
        preprocess={"size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        labels=list(LABELS),
        metrics=[{"name": "accuracy", "value": 0.25, "dataset": "shapes-heldout", "seed": 20241121}],
        latency={"ms": 0.05, "batch": 1, "threads": 2, "machine": "test"},
        provenance={"recipe": "none (built by the test)", "commit": "0000000"},
    )
    write_card(folder, card)
    return folder


@pytest.fixture
def model_root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    root.mkdir()
    return root


@pytest.fixture
def add_model(model_root: Path) -> Callable[..., Path]:
    """`add_model(id, task, root=model_root)` builds a valid model folder and returns it."""
    def add(model_id: str = "tiny-shapes", task: str = "demo.shapes", root: Path | None = None) -> Path:
        return make_model(root or model_root, model_id, task)

    return add


@pytest.fixture
def zoo(model_root: Path, tmp_path: Path) -> Zoo:
    """A zoo over an empty temporary model folder (add models with make_model(model_root))."""
    return Zoo([model_root], install_root=model_root)


@pytest.fixture
def make_window(qtbot, tmp_path: Path) -> Iterator[Callable[..., object]]:
    from app.gui.main_window import MainWindow

    made: list[MainWindow] = []

    def make(registry: Registry | None = None, zoo: Zoo | None = None, **kw) -> MainWindow:
        kw.setdefault("confirm_close", False)
        w = MainWindow(registry=registry if registry is not None else discover(use_entry_points=False),
                       zoo=zoo or Zoo([tmp_path / "no-models"]), **kw)
        qtbot.addWidget(w)
        made.append(w)
        return w

    yield make
    for w in made:
        w.shutdown(5)
