"""`vitascope compress` end to end on a tiny trained model (seconds): reparam 4→2 + KD + int8, fake-quant path,
missing checkpoint → exit 2; the written folders install into a Zoo and their cards record the lineage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from app.cli import main  # noqa: E402
from app.core.card import read_card  # noqa: E402
from app.core.jobs import CancelToken, JobSpec  # noqa: E402
from app.core.zoo import Zoo  # noqa: E402
from app.train import loop, pipeline  # noqa: E402
from app.train.compress import CompressSpec, compress  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A depth-4 vit-micro trained for a few steps, exported to a model folder holding checkpoint.pt."""
    root = tmp_path_factory.mktemp("teacher")
    params = {"model": "vit-micro", "model_overrides": {"depth": 4, "width": 32, "heads": 2, "num_outputs": 4,
                                                        "img_size": 32},
              "data": {"entry": "plugins.demo.shapes:make_dataset", "seed": 1,
                       "params": {"n_train": 96, "n_val": 32, "size": 32}},
              "steps": 8, "batch_size": 16, "lr": 1e-3, "warmup_steps": 2, "log_every": 4, "threads": 1,
              "export": {"id": "tiny-teacher", "task": "demo.shapes", "labels": ["a", "b", "c", "d"],
                         "heldout": {"seed": 77, "params": {"n_train": 0, "n_val": 48, "size": 32}},
                         "latency_runs": 3}}
    job = JobSpec("train", params, out_dir=str(root / "run"), name="tiny", seed=0)
    spec = loop.TrainSpec.from_job(job)
    res = loop.train(spec, lambda ev: None, CancelToken())
    folder = root / "tiny-teacher"
    pipeline.export_from_checkpoint(res.checkpoint, folder)
    shutil.copy2(res.checkpoint, folder / "checkpoint.pt")
    return folder


def test_cli_reparam_int8_installs(teacher_dir, tmp_path):
    out = tmp_path / "tiny-d2-int8"
    code = main(["compress", "--model", str(teacher_dir), "--out", str(out), "--reparam-depth", "2", "--steps", "6",
                 "--batch-size", "16", "--quant", "int8", "--calib-samples", "32", "--latency-runs", "3",
                 "--threads", "1"])
    assert code == 0
    card = read_card(out)
    prov = card.provenance
    assert prov["teacher"] == "tiny-teacher" and prov["steps"] == ["reparam4to2+kd", "int8"]
    assert prov["reparam"]["branches"] == 2 and prov["calibration"]["samples"] == 32 and prov["seed"] == 0
    assert card.arch["depth"] == 2 and card.extra["int8"]["weights"] == "QInt8"
    names = {m["name"] for m in card.metrics}
    assert {"accuracy", "accuracy_fp32"} <= names and all("held-out" in m["dataset"] for m in card.metrics)
    assert all(m["seed"] == 77 for m in card.metrics)
    assert card.latency["ms"] > 0 and card.bytes > 0
    assert (out / "checkpoint.pt").is_file()
    zoo = Zoo(roots=[], install_root=tmp_path / "zoo")
    assert zoo.install(out).id == "tiny-d2-int8"


def test_python_api_fake_quant_nkd(teacher_dir, tmp_path):
    out = compress(CompressSpec(model=str(teacher_dir), out=str(tmp_path / "s"), reparam_depth=1, distill="nkd",
                                quant="w4a4-repq", steps=4, batch_size=16, calib_samples=32, threads=1,
                                latency_runs=3))
    card = read_card(out)
    assert card.params < read_card(teacher_dir).params and card.arch["depth"] == 1
    assert card.extra["fake_quant"]["simulated"] is True
    assert {"accuracy", "accuracy_w4a4_repq"} <= {m["name"] for m in card.metrics}


def test_distillation_reports_progress_and_cancels_without_writing(teacher_dir, tmp_path):
    from app.core.errors import Cancelled

    events, cancel = [], CancelToken()

    def on_event(ev):
        events.append(ev)
        if ev.event == "progress" and ev.step == 20:
            cancel.cancel()

    out = tmp_path / "never"
    spec = CompressSpec(model=str(teacher_dir), out=str(out), reparam_depth=2, distill="kd", steps=40, batch_size=16,
                        calib_samples=32, threads=1, latency_runs=3)
    with pytest.raises(Cancelled):
        compress(spec, on_event, cancel)
    progress = [ev for ev in events if ev.event == "progress"]
    assert [ev.step for ev in progress] == [10, 20] and all(ev.total == 40 for ev in progress)
    assert all(set(ev.values) == {"distill_loss", "lambda"} for ev in progress)
    assert any("distilling a depth-2 student" in (ev.message or "") for ev in events if ev.event == "started")
    assert not out.exists()


def test_missing_checkpoint_is_exit_2(teacher_dir, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(teacher_dir, bare, ignore=shutil.ignore_patterns("checkpoint.pt"))
    assert main(["compress", "--model", str(bare), "--out", str(tmp_path / "x"), "--reparam-depth", "2"]) == 2
    assert "no checkpoint.pt" in capsys.readouterr().err


def test_bad_options_are_exit_2(teacher_dir, tmp_path):
    assert main(["compress", "--model", str(teacher_dir), "--out", str(tmp_path / "x"), "--distill", "kd"]) == 2
    assert main(["compress", "--model", str(teacher_dir), "--out", str(tmp_path / "y"), "--quant", "int4"]) == 2
    assert main(["compress", "--model", str(teacher_dir), "--out", str(tmp_path / "z"), "--calib-samples", "8"]) == 2


def test_commands_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, app.train.commands; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


def test_logits_cli_and_distill_from_store(teacher_dir, tmp_path):
    store = tmp_path / "store"
    assert main(["logits", "save", "--model", str(teacher_dir), "--store", str(store), "--topk", "2"]) == 0
    assert main(["logits", "check", "--model", str(teacher_dir), "--store", str(store), "--limit", "16"]) == 0
    out = compress(CompressSpec(model=str(teacher_dir), out=str(tmp_path / "from-store"), reparam_depth=2,
                                distill=f"logits:{store}", steps=3, batch_size=16, threads=1, latency_runs=3))
    assert read_card(out).provenance["reparam"]["distill"] == f"logits:{store}"


def test_regression_teacher_distils_prediction_and_features(tmp_path):
    """The autofocus path: a regression teacher, default distillation (prediction + feature MSE), I&S-ViT eval."""
    params = {"model": "vit-micro", "task": "regression", "loss": "mse",
              "model_overrides": {"depth": 2, "width": 32, "heads": 2, "num_outputs": 1, "img_size": 32},
              "data": {"entry": "plugins.demo.shapes:make_dataset", "seed": 1,
                       "params": {"n_train": 64, "n_val": 32, "size": 32}},
              "steps": 4, "batch_size": 16, "lr": 1e-3, "log_every": 4, "threads": 1}
    res = loop.train(loop.TrainSpec.from_job(JobSpec("train", params, out_dir=str(tmp_path / "run"), seed=0)),
                     lambda ev: None, CancelToken())
    folder = tmp_path / "reg-teacher"
    pipeline.export_from_checkpoint(res.checkpoint, folder, id="reg-teacher", task="demo.regression",
                                    latency_runs=3)
    shutil.copy2(res.checkpoint, folder / "checkpoint.pt")
    out = compress(CompressSpec(model=str(folder), out=str(tmp_path / "reg-d1"), reparam_depth=1,
                                quant="w4a4-ias", quant_iters=2, steps=3, batch_size=16, calib_samples=32,
                                threads=1, latency_runs=3))
    card = read_card(out)
    assert card.provenance["reparam"]["distill"] == "regression" and card.arch["depth"] == 1
    assert {"mae", "rmse", "mae_w4a4_ias"} <= {m["name"] for m in card.metrics}
    assert all("validation split, not held-out" in m["dataset"] for m in card.metrics)
    with pytest.raises(Exception, match="regression"):
        compress(CompressSpec(model=str(folder), out=str(tmp_path / "x"), reparam_depth=1, distill="nkd", steps=1))


def test_cards_name_teachers_under_the_jobs_folder_portably(tmp_path):
    from app.core import paths
    from app.train.compress import portable_dir

    assert portable_dir(paths.jobs_dir() / "run" / "model") == "jobs:run/model"
    assert portable_dir(tmp_path) == str(tmp_path)
