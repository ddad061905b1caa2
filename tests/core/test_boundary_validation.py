"""The app's boundaries refuse what they cannot use: job entry points nobody registered (before importing them),
hostile model folders, unwritable outputs, values beyond float32, a model asked for that cannot be used."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core import entries
from app.core.errors import BadInput, JobError, ModelError
from app.core.host import HeadlessHost
from app.core.manifest import model_roots
from app.core.task_model import TaskModel
from app.core.validate import check_fields, check_output_dir, check_output_file, finite_float32
from app.core.zoo import Zoo

EVIL = ("import pathlib\n"
        "pathlib.Path(__file__).with_name('IMPORTED').write_text('x')\n"
        "def run(*a, **k):\n    return 1\n")


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    """An importable module that leaves a marker file when imported."""
    (tmp_path / "vitascope_evil_mod.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "IMPORTED"


@pytest.mark.parametrize("entry", ["os:getcwd", "subprocess:getoutput", "vitascope_evil_mod:run",
                                   "app.train.worker:main"])
def test_unregistered_entries_are_refused_before_import(entry, evil_module):
    with pytest.raises(JobError, match="not registered by the app or an installed plug-in") as err:
        entries.check_entry(entry, "job kind")
    assert "\n" not in str(err.value)
    assert not evil_module.exists() and "vitascope_evil_mod" not in sys.modules


def test_registered_entries_pass():
    assert "plugins.demo.shapes:make_dataset" in entries.allowed_entries()  # a built-in plug-in's train task
    assert entries.check_entry("app.train.wizard_job:run") == "app.train.wizard_job:run"
    with pytest.raises(JobError, match="package.module:function"):
        entries.check_entry("../../x:y")


def test_worker_refuses_an_unregistered_kind_and_data_entry(evil_module):
    pytest.importorskip("torch")
    from app.core.jobs import JobSpec
    from app.train import worker

    with pytest.raises(JobError, match="not registered"):
        worker.prepare(JobSpec("vitascope_evil_mod:run", out_dir="x"))
    data = {"entry": "vitascope_evil_mod:run", "params": {}}
    with pytest.raises(JobError, match="not registered"):
        worker.prepare(JobSpec("train", {"data": data, "steps": 1}, out_dir="x"))
    assert not evil_module.exists()


def _model_copy(tmp_path: Path) -> Path:
    import shutil

    src = tmp_path / "src"
    shutil.copytree(Zoo(model_roots()).entry("demo-shapes-vit").folder, src, ignore=shutil.ignore_patterns("*.pt"))
    card = (src / "card.toml").read_text()
    (src / "card.toml").write_text(card.replace('id = "demo-shapes-vit"', 'id = "demo-copy"', 1))
    return src


@pytest.mark.parametrize("hostile", ["symlink", "hardlink", "fifo", "symlinked-card"])
def test_install_refuses_links_and_special_files_and_copies_nothing(tmp_path, hostile):
    src = _model_copy(tmp_path)
    if hostile == "symlink":
        os.symlink("/etc/hostname", src / "extra.txt")
    elif hostile == "hardlink":
        os.link(src / "golden.npz", src / "linked.npz")
    elif hostile == "fifo":
        os.mkfifo(src / "pipe")
    else:
        real = tmp_path / "card-elsewhere.toml"
        (src / "card.toml").rename(real)
        os.symlink(real, src / "card.toml")
    zoo = Zoo([tmp_path / "user"], install_root=tmp_path / "user")
    with pytest.raises(ModelError) as err:
        zoo.install(src)
    assert str(src) in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "user").exists() or not any((tmp_path / "user").iterdir())


def test_install_copies_a_clean_folder(tmp_path):
    zoo = Zoo([tmp_path / "user"], install_root=tmp_path / "user")
    src = _model_copy(tmp_path)
    (src / "notes").mkdir()  # sub-folders are not part of a model: left out
    assert zoo.install(src).id == "demo-copy"
    assert sorted(p.name for p in (tmp_path / "user" / "demo-copy").iterdir()) == sorted(
        p.name for p in src.iterdir() if p.is_file())


def test_a_chosen_model_is_never_replaced(tmp_path):
    host = HeadlessHost(Zoo(model_roots()), home=tmp_path)
    assert TaskModel(host, "demo.shapes").handle.card.id == "demo-shapes-vit"
    with pytest.raises(ModelError, match="'bogus' is not an installed 'demo.shapes' model"):
        TaskModel(host, "demo.shapes", "bogus").handle  # noqa: B018
    with pytest.raises(ModelError, match="not an installed 'demo.shapes' model"):
        TaskModel(host, "demo.shapes", "ecg-screen-vit").handle  # noqa: B018
    src = _model_copy(tmp_path)
    data = bytearray((src / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (src / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match"):
        TaskModel(host, "demo.shapes", str(src)).handle  # noqa: B018


@pytest.mark.parametrize("make", [check_output_dir, check_output_file])
def test_outputs_that_cannot_be_created_are_refused_and_nothing_is_made(tmp_path, make):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = sorted(tmp_path.rglob("*"))
    for bad in (blocker / "out", blocker / "a" / "b", Path("/proc/vitascope-test/out"), ""):
        with pytest.raises(BadInput) as err:
            make(bad)
        assert "\n" not in str(err.value)
    assert sorted(tmp_path.rglob("*")) == before
    assert make(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper" and not (tmp_path / "new").exists()


def test_values_beyond_float32_are_refused_not_turned_into_inf():
    big = np.full((2, 2), 1e300)
    with pytest.raises(BadInput, match="exceed float32"):
        finite_float32(big, "frame")
    assert finite_float32(np.full(3, 3e38), "frame").dtype == np.float32
    handle = Zoo(model_roots()).open("demo-shapes-vit")
    x = np.full((1, 3, 64, 64), 1e300)
    with pytest.raises(ModelError, match="exceed float32"):
        handle.run(x)


@pytest.mark.parametrize("data, words", [
    ({"seed": "x"}, "seed must be an integer, got \"x\""),
    ({"seed": True}, "seed must be an integer"),
    ({"steps": "10"}, "steps must be an integer"),
    ({"params": [1]}, "params must be a table, got list"),
    ({"betas": [0.9, "x"]}, "betas must be a list of finite numbers"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"colour": 1}, "unknown field(s) colour"),
])
def test_typed_fields(data, words):
    types = {"seed": "int", "steps": "int", "params": "dict[str, Any]", "betas": "list[float]", "lr": "float"}
    with pytest.raises(JobError) as err:
        check_fields(data, types, "job spec", JobError)
    assert words in str(err.value)
