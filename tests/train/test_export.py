"""torch → ONNX export: one file, free batch/height/width, ORT-vs-torch parity, a folder the zoo accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from app.core.card import read_card, sha256_file  # noqa: E402
from app.core.errors import JobError  # noqa: E402
from app.core.zoo import golden_check, open_folder  # noqa: E402
from app.train.arch.vit import create_model  # noqa: E402
from app.train.export import export_onnx, parity_check  # noqa: E402

FIELDS = {"id": "test-micro", "task": "demo.shapes", "labels": ["circle", "square", "triangle", "cross"],
          "preprocess": {"size": 64, "mean": [0.5] * 3, "std": [0.5] * 3, "crop": "resize"},
          "metrics": [{"name": "accuracy", "value": 0.25, "dataset": "random weights", "seed": 0}],
          "provenance": {"recipe": "none", "note": None}}


def randomised_micro():
    """vit-micro with non-trivial random weights (RepVGG verify.py style: the default init has a zero head)."""
    torch.manual_seed(0)
    model = create_model("vit-micro")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "test-micro"
    model = randomised_micro()
    card = export_onnx(model, torch.zeros(1, 3, 64, 64), out, FIELDS, latency_runs=10)
    return model, card, out


def test_single_file_and_card(exported):
    _, card, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["card.toml", "golden.npz", "model.onnx"]
    assert not list(out.glob("*.data"))
    disk = read_card(out)
    assert disk.sha256 == sha256_file(out / "model.onnx") and disk.bytes == (out / "model.onnx").stat().st_size
    assert disk.params == sum(p.numel() for p in exported[0].parameters())
    assert disk.opset >= 17
    assert disk.inputs[0].shape == ("batch", 3, "height", "width")
    assert disk.outputs[0].name == "logits" and disk.outputs[0].shape == ("batch", 4)
    assert disk.latency["ms"] > 0 and disk.latency["batch"] == 1 and disk.latency["threads"] == 2
    assert disk.latency["machine"]
    assert disk.labels == FIELDS["labels"] and disk.task == "demo.shapes" and disk.metric("accuracy") == 0.25
    assert disk.arch["depth"] == 2 and disk.provenance == {"recipe": "none"}
    assert disk.extra["export"]["parity_max_abs_diff"] <= 1e-4


def test_zoo_accepts_the_folder(exported):
    handle = open_folder(exported[2])
    assert golden_check(handle) <= 1e-4
    with np.load(exported[2] / "golden.npz") as z:
        assert z["input_0"].shape == (2, 3, 64, 64) and z["output_0"].shape == (2, 4)


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("hw", [(64, 64), (96, 96), (48, 80)])
def test_ort_matches_torch(exported, batch, hw):
    model, _, out = exported
    handle = open_folder(out)
    x = torch.rand(batch, 3, *hw, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    with torch.no_grad():
        ref = model(x).numpy()
    (got,) = handle.run(x.numpy())
    assert got.shape == (batch, 4)
    assert np.abs(ref).max() > 0.1  # a meaningful comparison, not zeros against zeros
    assert np.max(np.abs(got - ref)) <= 1e-4


def test_parity_failure_raises(exported):
    _, _, out = exported
    other = create_model("vit-micro").eval()
    with torch.no_grad():
        for p in other.parameters():
            p.normal_(0, 0.2)
    with pytest.raises(JobError, match="differs from torch"):
        parity_check(other, out / "model.onnx", "image", torch.zeros(2, 3, 64, 64), [1, 2], [(64, 64), (96, 96)])


def test_bad_card_fields_rejected(tmp_path: Path):
    with pytest.raises(JobError, match="unknown card field"):
        export_onnx(randomised_micro(), torch.zeros(2, 3, 64, 64), tmp_path, {"colour": "red"})
