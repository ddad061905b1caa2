"""int8 QDQ deployment: a model folder the zoo accepts, lineage and parity recorded, close to fp32."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from app.core.card import read_card  # noqa: E402
from app.core.zoo import Zoo  # noqa: E402
from app.train.arch.vit import create_model  # noqa: E402
from app.train.export import export_onnx  # noqa: E402
from app.train.int8 import ArrayReader, quantize_folder, run_onnx  # noqa: E402


def test_reader_is_deterministic():
    data = np.arange(40 * 3, dtype=np.float32).reshape(40, 3, 1, 1)
    r = ArrayReader("x", data, batch=16)
    first = [b["x"].copy() for b in iter(r.get_next, None)]
    r.rewind()
    second = [b["x"] for b in iter(r.get_next, None)]
    assert [len(b) for b in first] == [16, 16, 8]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_int8_folder(tmp_path):
    torch.manual_seed(0)
    model = create_model("vit-micro", depth=2, width=32, heads=2, img_size=32, num_outputs=4)
    with torch.no_grad():  # non-trivial random weights (the default init is nearly input-independent)
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0, 0.2)
    fp = tmp_path / "fp"
    export_onnx(model.eval(), torch.zeros(2, 3, 32, 32), fp, {"id": "tiny-fp", "task": "demo.shapes",
                "provenance": {"recipe": "test"}}, latency_runs=3, batch_sizes=(1, 2), image_sizes=[(32, 32)])
    calib = np.random.default_rng(0).uniform(-1, 1, (32, 3, 32, 32)).astype(np.float32)
    out = tmp_path / "int8"
    card = quantize_folder(fp, out, calib, card_updates={"id": "tiny-int8",
                                                         "provenance": {"teacher": "tiny-fp", "steps": ["int8"]}},
                           latency_runs=3)
    disk = read_card(out)
    assert disk.id == "tiny-int8" and disk.provenance["teacher"] == "tiny-fp" and disk.provenance["recipe"] == "test"
    assert disk.extra["int8"]["activations"] == "QUInt8" and disk.extra["int8"]["calibration_samples"] == 32
    assert card.bytes < (fp / "model.onnx").stat().st_size
    assert len(disk.extra["int8"]["fp32_nodes"]) == 4  # QK^T and AV of both blocks stay fp32
    held = np.random.default_rng(1).uniform(-1, 1, (8, 3, 32, 32)).astype(np.float32)
    a, b = run_onnx(fp / "model.onnx", held, "image"), run_onnx(out / "model.onnx", held, "image")
    assert np.abs(a - b).max() < 0.1 * max(1.0, np.abs(a).max())
    # the graph as the app runs it (fused integer kernels) computes what the plain QDQ graph computes
    fusion = disk.extra["int8"]["runtime_fusion"]
    assert fusion["fused_vs_qdq"] <= fusion["qdq_vs_fp32"]
    zoo = Zoo(roots=[], install_root=tmp_path / "zoo")
    assert zoo.install(out).id == "tiny-int8"
