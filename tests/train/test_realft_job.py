"""The real-image fine-tuning job end to end on a tiny model and a small labelled ECG folder: k-fold metrics,
temperature and OOD statistics on the card, a model folder the zoo opens and the ECG engine screens with."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.core.errors import JobError
from app.core.host import HeadlessHost
from app.core.jobs import CancelToken, JobSpec
from app.core.zoo import open_folder
from app.train.arch.vit import create_model
from app.train.checkpoint import save_checkpoint
from app.train.realft_job import run
from plugins.ecg.engine import EcgEngine
from plugins.ecg.readers import read_inputs
from plugins.ecg.render import render
from plugins.ecg.types import CLASSES
from plugins.ecg.waveform import simulate

SIZE = [64, 96]
pytestmark = pytest.mark.slow  # ~1.5 min on 2 cores: five small trainings, two ONNX exports with parity checks


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("khan-like")
    for c, label in enumerate(CLASSES):
        (root / label).mkdir()
        for i in range(4):
            img = render(simulate(label, 1000 * c + i), dpi=70, seed=i)
            cv2.imwrite(str(root / label / f"{label}-{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    model = create_model("vit-micro", img_size=64, patch=32, in_chans=1, width=32, depth=1, heads=2, mlp_dim=64,
                         num_outputs=4, stem="cnn", pool="mean")
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(path, {"config": model.config.to_dict(), "model": model.state_dict(), "model_name": "vit-micro"})
    return path


def _spec(out, labelled, ckpt, **over):
    params = {"init": str(ckpt), "steps": 3, "batch_size": 8, "threads": 1,
              "real": {"entry": "plugins.ecg.labelled:labelled_data",
                       "params": {"path": str(labelled), "size": SIZE, "k": 2}},
              "card": {"id": "ecg-tiny", "task": "ecg.screen", "labels": list(CLASSES),
                       "preprocess": {"size": SIZE}}}
    params.update(over)
    return JobSpec("app.train.realft_job:run", params, out_dir=str(out), name="tiny-realft", seed=0)


def test_realft_writes_an_honest_calibrated_model_folder(tmp_path, labelled, tiny_ckpt):
    events = []
    assert run(_spec(tmp_path, labelled, tiny_ckpt), events.append, CancelToken()) == "finished"
    report = json.loads((tmp_path / "realft-report.json").read_text())
    assert report["folds"] == 2 and report["n"] == 16
    assert np.sum(report["cv"]["confusion"]) == 16  # every image predicted once, out of fold
    assert 0 <= report["ece_after"] <= 1 and report["temperature"] > 0
    handle = open_folder(tmp_path / "model")
    card = handle.card
    assert [o.name for o in card.outputs] == ["logits", "features"]
    assert card.extra["calibration"]["temperature"] == pytest.approx(report["temperature"], rel=1e-3)
    assert card.extra["ood"]["refuse"] > card.extra["ood"]["threshold"] > 0
    names = {m["name"] for m in card.metrics}
    assert {"accuracy_real_cv", "macro_f1_real_cv", "ece_after_real_cv"} <= names
    assert any(e.event == "finished" for e in events)

    host = HeadlessHost()
    engine = EcgEngine(host)
    engine.use_handle(handle)
    (inp,) = read_inputs(next((labelled / "normal").iterdir()))
    r = engine.screen(inp, explain=True)
    assert r.ood_score is not None and r.heatmap is not None
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_realft_refuses_a_bad_spec(tmp_path, labelled, tiny_ckpt):
    with pytest.raises(JobError, match="steps"):
        run(_spec(tmp_path, labelled, tiny_ckpt, steps="10"), lambda e: None, CancelToken())
