"""The wizard's Qt-free parts: tasks from plug-ins, the spec → JobSpec / recipe TOML, estimates and budgets, the
output-folder check, and the leakage rules (identical content never straddles train and test)."""

from __future__ import annotations

import tomllib
from types import SimpleNamespace

import numpy as np
import pytest

from app.core.errors import BadInput
from app.core.plugin_api import API_VERSION, PluginInfo, TrainTask
from app.core.registry import discover
from app.core.wizard_data import (
    DataLeakage,
    array_hashes,
    check_no_leakage,
    find_leaks,
    folder_dataset,
    scan_folder,
    split_by_hash,
    summarize,
)
from app.core.wizard_spec import (
    ARCHITECTURES,
    WIZARD_JOB,
    WizardSpec,
    approx_params,
    available_tasks,
    check_output_dir,
)


def demo_spec(tmp_path) -> WizardSpec:
    tasks = {t.id: t for t in available_tasks(discover(use_entry_points=False).plugins)}
    spec = WizardSpec()
    spec.set_task(tasks["demo.shapes"])
    spec.data.n_train, spec.data.n_val, spec.data.image_size = 64, 16, 32
    spec.start.overrides = {"depth": 2, "width": 32, "heads": 2}
    spec.recipe.steps, spec.recipe.batch_size, spec.recipe.threads = 10, 16, 1
    spec.model_id, spec.out_dir = "shapes-test", str(tmp_path / "out")
    return spec


# tasks -----------------------------------------------------------------------------------------------------
def test_builtin_plugins_offer_their_tasks():
    ids = {t.id: t for t in available_tasks(discover(use_entry_points=False).plugins)}
    assert "demo.shapes" in ids
    assert ids["demo.shapes"].plugin == "demo" and ids["demo.shapes"].data_entry.endswith(":make_dataset")


def test_a_plugin_declares_a_task_in_one_line():
    task = TrainTask(id="ecg.screen", title="ECG screening", plugin="ecg", data_entry="x.y:z")
    info = PluginInfo(id="ecg", name="ECG", version="0", api_version=API_VERSION, train_tasks=(task,))
    assert available_tasks([SimpleNamespace(info=info)]) == [task]
    assert PluginInfo(id="a", name="a", version="0", api_version=API_VERSION).train_tasks == ()


def test_architecture_table_mirrors_the_registry():
    torch = pytest.importorskip("torch")  # noqa: F841
    from app.train.arch.vit import VisionTransformer, count_params, get_config, list_configs

    assert sorted(ARCHITECTURES) == list_configs()
    for name, cfg in ARCHITECTURES.items():
        real = get_config(name).to_dict()
        assert {k: real[k] for k in cfg} == cfg, name
        assert approx_params(real) == count_params(VisionTransformer(get_config(name))), name


# spec → job / recipe -----------------------------------------------------------------------------------------
def test_plain_training_is_a_train_job(tmp_path):
    spec = demo_spec(tmp_path)
    assert spec.problems() == []
    job = spec.to_job()
    assert job.kind == "train" and job.name == "shapes-test" and job.out_dir == spec.out_dir
    p = job.params
    assert p["data"] == {"entry": "plugins.demo.shapes:make_dataset", "seed": 1,
                         "params": {"n_train": 64, "n_val": 16, "size": 32}}
    assert p["model_overrides"]["img_size"] == 32 and p["model_overrides"]["num_outputs"] == 4
    ex = p["export"]
    assert ex["id"] == "shapes-test" and ex["task"] == "demo.shapes" and ex["preprocess"]["size"] == 32
    assert ex["labels"] == ["circle", "square", "triangle", "cross"]
    assert ex["heldout"]["seed"] == 20241121 and ex["heldout"]["params"]["size"] == 32


def test_compression_uses_the_wizard_job(tmp_path):
    spec = demo_spec(tmp_path)
    spec.recipe.reparam_depth, spec.recipe.distill, spec.recipe.quant = 1, "nkd", "int8"
    assert spec.problems() == []
    job = spec.to_job()
    assert job.kind == WIZARD_JOB
    assert job.params["compress"]["reparam_depth"] == 1 and job.params["compress"]["quant"] == "int8"
    assert job.params["train"]["steps"] == 10


def test_problems_name_what_is_wrong(tmp_path):
    spec = demo_spec(tmp_path)
    spec.recipe.distill = "kd"
    assert any("student depth" in p for p in spec.problems())
    spec.recipe.reparam_depth = 3  # does not divide 2
    assert any("must divide" in p for p in spec.problems())
    spec.recipe.reparam_depth, spec.recipe.distill = 0, ""
    spec.recipe.mode = "finetune"
    assert any("checkpoint.pt" in p for p in spec.problems())
    spec.recipe.mode = "train"
    spec.model_id = "bad id!"
    assert any("model id" in p for p in spec.problems())


def test_recipe_toml_is_the_same_job(tmp_path):
    from app.train.commands import load_recipe  # torch-free at import

    spec = demo_spec(tmp_path)
    path = spec.save_recipe(tmp_path / "r.toml")
    assert tomllib.loads(path.read_text())["kind"] == "train"
    job = load_recipe(path)
    want = spec.to_job()
    assert job.kind == want.kind and job.out_dir == want.out_dir and job.seed == want.seed
    assert {k: v for k, v in job.params.items() if k != "export"} == \
        {k: v for k, v in want.params.items() if k != "export"}


def test_estimate_and_time_budget(tmp_path):
    spec = demo_spec(tmp_path)
    seconds, basis = spec.estimate()
    assert seconds and seconds > 0 and "history" in basis  # from the shipped model's card
    spec.recipe.steps = 10_000
    spec.recipe.seconds_per_step = 0.01
    from app.core.wizard_spec import STARTUP_S, step_cost

    spec.recipe.measured_cost = step_cost(spec.model_config(), spec.recipe.batch_size)
    seconds, basis = spec.estimate()
    assert basis == "measured speed" and seconds == pytest.approx(STARTUP_S + 100.0)
    spec.recipe.time_budget_s = 56.0
    assert spec.effective_steps() == 5000
    assert spec.to_job().params["steps"] == 5000


def test_output_folder_check(tmp_path):
    assert check_output_dir(tmp_path / "new" / "folder") is None
    blocker = tmp_path / "file"
    blocker.write_text("x")
    msg = check_output_dir(blocker / "out")
    assert msg and "cannot be written" in msg and "Not a directory" in msg


# leakage -----------------------------------------------------------------------------------------------------
def test_split_by_hash_keeps_duplicates_together():
    hashes = [f"h{i % 37}" for i in range(400)]  # every content appears ~11 times
    tr, va = split_by_hash(hashes, 0.25, seed=3)
    assert len(tr) + len(va) == 400 and len(va) > 0 and len(tr) > 0
    assert not set(hashes[i] for i in tr) & set(hashes[i] for i in va)
    tr2, va2 = split_by_hash(hashes, 0.25, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    with pytest.raises(BadInput):
        split_by_hash(hashes, 1.5, seed=0)


def test_leakage_is_refused_with_an_example():
    assert find_leaks(["a", "b"], ["c"]) == []
    check_no_leakage(["a", "b"], ["c"])
    with pytest.raises(DataLeakage, match=r"1 identical item.*x.png \(train\) = y.png \(test\)"):
        check_no_leakage(["a", "b"], ["b", "c"], ["w.png", "x.png"], ["y.png", "z.png"])


def test_summary_counts_leaks_and_makes_thumbnails():
    rng = np.random.default_rng(0)
    x_tr = rng.normal(size=(10, 3, 8, 8)).astype(np.float32)
    x_va = rng.normal(size=(4, 3, 8, 8)).astype(np.float32)
    x_va[2] = x_tr[5]
    s = summarize((x_tr, np.arange(10) % 2, x_va, np.arange(4) % 2), ["a", "b"], n_thumbs=3)
    assert s.leaks == 1 and s.classes == {"a": 5, "b": 5} and len(s.thumbnails) == 3
    assert s.thumbnails[0].shape == (8, 8, 3) and s.thumbnails[0].dtype == np.uint8
    assert "straddle" in s.text()
    assert array_hashes(x_tr[:1]) == array_hashes(x_tr[:1].copy())


def test_folder_dataset_splits_by_content(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(1)
    for c in ("cat", "dog"):
        (tmp_path / "data" / c).mkdir(parents=True)
    imgs = [rng.integers(0, 255, (12, 12, 3), dtype=np.uint8) for _ in range(6)]
    for i in range(30):  # the same six pictures under many names: duplicates must stay on one side
        c = "cat" if i % 2 else "dog"
        cv2.imwrite(str(tmp_path / "data" / c / f"img{i}.png"), imgs[i % 6])
    idx = scan_folder(tmp_path / "data")
    assert idx.classes == ["cat", "dog"] and len(idx.files) == 30
    x_tr, y_tr, x_va, y_va = folder_dataset(seed=0, path=str(tmp_path / "data"), size=16, val_fraction=0.3)
    assert x_tr.shape[1:] == (3, 16, 16) and len(x_tr) + len(x_va) == 30
    assert not find_leaks(array_hashes(x_tr), array_hashes(x_va))
    with pytest.raises(BadInput, match="one sub-folder of images per class"):
        scan_folder(tmp_path / "data" / "cat")


def test_scan_folder_reads_every_registered_image_suffix_and_hashes_content(tmp_path):
    from app.core.collection import file_sha256
    from app.core.io.images import IMAGE_SUFFIXES

    for c in ("a", "b"):
        for i, suf in enumerate(sorted(IMAGE_SUFFIXES)):
            f = tmp_path / c / f"x{i}{suf.upper() if i % 2 else suf}"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(f"{c}{i}".encode())
        (tmp_path / c / "readme.txt").write_text("no")
        (tmp_path / c / "._x0.png").write_bytes(b"resource fork")  # hidden: a macOS copy artefact
    idx = scan_folder(tmp_path)
    assert len(idx.files) == 2 * len(IMAGE_SUFFIXES) and idx.labels.tolist().count(1) == len(IMAGE_SUFFIXES)
    assert idx.hashes == [file_sha256(f) for f in idx.files] and len(set(idx.hashes)) == len(idx.files)
