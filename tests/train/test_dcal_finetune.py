"""The retrieval task's wizard job: fine-tune a DCAL parent (weights from its card's checkpoint artifact) on labelled
class folders, split by class with a recorded seed, export ONNX, score the new model and its parent on the held-out
classes with the plug-in's protocol, install into the zoo; bad folders, cancel and resume."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from app.core.card import Artifact, read_card, sha256_file, write_card
from app.core.errors import BadInput, JobError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent
from app.core.registry import discover
from app.core.wizard_spec import WizardSpec, available_tasks
from app.core.zoo import Zoo
from app.train.dcal_finetune import CHECKPOINT_FILE, HEAD_KEYS, load_parent
from app.train.dcal_train import export, train
from app.train.worker import prepare, run_job
from plugins.retrieval.engine import evaluate
from plugins.retrieval.layouts import read_folders
from plugins.retrieval.synthetic import make_split
from plugins.retrieval.wizard_data import folder_dataset, split_classes

TINY = {"img_size": 64, "patch": 16, "width": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0, "top_r": 0.3,
        "stem": "patch"}
KIND = "app.train.dcal_finetune:run"


def write_parent(folder: Path, with_checkpoint: bool = True) -> Path:
    """A tiny DCAL parent trained for a few steps, saved as `dcal_train --out` saves it and declared on its card."""
    params = {"steps": 3, "p": 4, "k": 2, "threads": 1, "log_every": 1, "arch": TINY,
              "data": {"synthetic": {"n_ids": 6, "views": 3, "seed": 11}}}
    model, info = train(params, 0, folder)
    folder.mkdir(parents=True)
    torch.save({"state": model.state_dict(), "cfg": model.cfg.to_dict(), "info": info}, folder / CHECKPOINT_FILE)
    export(model, folder, {"id": folder.name, "provenance": {"note": "tiny test parent"}})
    if with_checkpoint:
        card = read_card(folder)
        ck = folder / CHECKPOINT_FILE
        card.sidecars.append(Artifact("checkpoint", CHECKPOINT_FILE, sha256_file(ck), ck.stat().st_size))
        write_card(folder, card)
    return folder


def write_classes(root: Path, n_classes: int = 8, views: int = 4, seed: int = 5) -> Path:
    x, y, _ = make_split(n_classes, views, seed, 48)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        d = root / f"class_{int(label):02d}"
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    return write_parent(tmp_path_factory.mktemp("zoo") / "tiny-dcal-parent")


@pytest.fixture(scope="module")
def classes(tmp_path_factory) -> Path:
    root = write_classes(tmp_path_factory.mktemp("data") / "specimens")
    (root / "class_03" / "broken.jpg").write_bytes(b"not an image at all")
    return root


def wizard_job(parent: Path, data: Path, out: Path, steps: int = 6) -> tuple[JobSpec, WizardSpec]:
    """The job the wizard builds for the retrieval task: folder data, the parent from the zoo, fine-tune."""
    task = next(t for t in available_tasks(discover().plugins) if t.id == "retrieval.embed")
    spec = WizardSpec()
    spec.set_task(task)
    spec.data.source, spec.data.path, spec.data.seed, spec.data.val_fraction = "folder", str(data), 4, 0.25
    spec.start.kind, spec.start.model_id, spec.start.model_dir = "zoo", parent.name, str(parent)
    spec.start.has_checkpoint = True
    spec.recipe.mode, spec.recipe.steps, spec.recipe.batch_size, spec.recipe.threads = "finetune", steps, 16, 1
    spec.model_id, spec.out_dir = "tiny-dcal-custom", str(out)
    assert spec.problems() == []
    return spec.to_job(), spec


@pytest.fixture(scope="module")
def finished(parent, classes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    job, spec = wizard_job(parent, classes, out)
    events: list[ProgressEvent] = []
    code = run_job(job, events.append, CancelToken(), prepare(job))
    return code, events, out, job, spec


def test_the_wizard_runs_the_tasks_own_job(finished):
    code, events, out, job, _ = finished
    assert job.kind == KIND and job.params["parent"] and job.params["data"]["params"]["val_fraction"] == 0.25
    assert code == 0, [e.message for e in events if e.event == "failed"]
    steps = [e.step for e in events if e.event == "progress" and e.step]
    assert steps == sorted(steps) and steps[-1] == job.params["steps"] and all(e.total == 6 for e in events
                                                                               if e.event == "progress" and e.step)
    started = [e.message for e in events if e.event == "started"]
    assert len(started) == 1 and started[0].endswith("; skipped 1 unreadable image(s): broken.jpg")
    assert "of 6 classes" in started[0]  # 8 classes, 2 held out
    assert [e.event for e in events][-2:] == ["artifact", "finished"]


def test_new_and_parent_scored_on_the_same_recorded_heldout_classes(finished, parent, classes):
    _, events, out, job, _ = finished
    card = read_card(out / "model")
    comp = card.section("comparison")
    split = comp["split"]
    assert split["seed"] == 4 and set(split["train_classes"]).isdisjoint(split["heldout_classes"])
    assert (split["train_classes"], split["heldout_classes"]) == split_classes(
        [f"class_{i:02d}" for i in range(8)], 4, 0.25)
    assert split["unreadable"] == [str(classes / "class_03" / "broken.jpg")]
    # the parent's numbers are the plug-in engine's on exactly those classes' files
    held = classes.parent / "held"
    for c in split["heldout_classes"]:
        (held / c).mkdir(parents=True)
        for f in (classes / c).glob("*.png"):
            (held / c / f.name).symlink_to(f)
    from plugins.retrieval.embedders import OnnxEmbedder

    ref = evaluate(read_folders(held), OnnxEmbedder(Zoo().open(parent)))
    assert comp["parent"]["map"] == pytest.approx(ref.map, abs=1e-6)
    assert comp["parent"]["recall"]["1"] == pytest.approx(ref.recall["1"], abs=1e-6)
    fin = events[-1].values
    metrics = {m["name"]: m["value"] for m in card.metrics}
    assert metrics["map"] == pytest.approx(fin["map"], abs=1e-6) == pytest.approx(comp["new"]["map"], abs=1e-6)
    assert {"map", "minp", "cmc_rank1", "cmc_rank5", "cmc_rank10", "recall_at_1", "recall_at_8"} <= set(metrics)
    assert fin["parent_map"] == pytest.approx(ref.map, abs=1e-6)


def test_result_installs_and_can_be_fine_tuned_again(finished, tmp_path):
    _, _, out, _, _ = finished
    model = out / "model"
    card = read_card(model)
    assert card.task == "retrieval.embed" and card.artifact("checkpoint") is not None
    zoo = Zoo(roots=[tmp_path / "user"], install_root=tmp_path / "user")
    installed = zoo.install(model)
    assert [c.id for c in zoo.cards("retrieval.embed")] == [installed.id] == ["tiny-dcal-custom"]
    emb = zoo.open(installed.id).run(np.zeros((2, 3, 64, 64), np.float32))[0]
    assert emb.shape == (2, 64) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    folder, _, ckpt = load_parent(zoo.entry(installed.id).folder)
    n_train = len(card.section("comparison")["split"]["train_classes"])
    # the ID heads were replaced for the user's classes, and the result ships them for a further fine-tune
    assert ckpt["cfg"]["num_ids"] == n_train
    assert [tuple(ckpt["state"][k].shape) for k in HEAD_KEYS] == [(n_train, 32)] * 2


def test_the_evaluate_page_scores_the_same_heldout_data(finished):
    from app.core.wizard_eval import compare

    _, events, out, job, spec = finished
    rows = compare(spec.task, job.params, out / "model", Path(job.params["parent"]))
    fin = events[-1].values
    assert [r.metric for r in rows] == ["recall_at_1", "recall_at_1"]
    assert rows[0].value == pytest.approx(fin["recall_at_1"], abs=1e-6)
    assert rows[1].value == pytest.approx(fin["parent_recall_at_1"], abs=1e-6)


def test_parent_without_checkpoint_artifact_or_with_a_tampered_one_is_refused(tmp_path, parent, classes):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(parent, bare)
    card = read_card(bare)
    card.sidecars = [a for a in card.sidecars if a.role != "checkpoint"]
    write_card(bare, card)
    with pytest.raises(JobError, match="no 'checkpoint' artifact"):
        load_parent(bare)
    tampered = tmp_path / "tampered"
    shutil.copytree(parent, tampered)
    with open(tampered / CHECKPOINT_FILE, "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(Exception, match="sha256"):
        load_parent(tampered)


@pytest.mark.parametrize("layout, message", [
    ("flat", "no sub-folders"),
    ("single", "only one readable image"),
    ("few", "needs at least 4"),
])
def test_bad_folders_give_one_clear_line(tmp_path, layout, message, parent):
    root = tmp_path / "d"
    if layout == "flat":
        root.mkdir()
        cv2.imwrite(str(root / "a.png"), np.zeros((8, 8, 3), np.uint8))
    elif layout == "single":
        write_classes(root, 5, 3)
        for f in sorted((root / "class_02").iterdir())[1:]:
            f.unlink()
    else:
        write_classes(root, 3, 3)
    with pytest.raises(BadInput, match=message) as e:
        folder_dataset(seed=0, path=str(root))
    assert "\n" not in str(e.value)
    job, _ = wizard_job(parent, root, tmp_path / "out")
    events: list[ProgressEvent] = []
    assert run_job(job, events.append, CancelToken(), prepare(job)) == 1
    failed = [e.message for e in events if e.event == "failed"]
    assert len(failed) == 1 and message in failed[0] and "\n" not in failed[0]


def test_split_is_fixed_by_its_seed():
    names = [f"c{i}" for i in range(20)]
    a, b = split_classes(names, 7, 0.2), split_classes(list(reversed(names)), 7, 0.2)
    assert a == b and len(a[1]) == 4 and set(a[0]).isdisjoint(a[1])
    assert split_classes(names, 8, 0.2) != a


def test_cancel_then_resume_continues_from_the_saved_step(parent, classes, tmp_path):
    job, _ = wizard_job(parent, classes, tmp_path / "out", steps=5)
    job.params["log_every"] = 1
    token = CancelToken()
    events: list[ProgressEvent] = []

    def on_event(ev: ProgressEvent) -> None:
        events.append(ev)
        if ev.event == "progress" and ev.step == 2:
            token.cancel()

    assert run_job(job, on_event, token, prepare(job)) == 3
    assert events[-1].event == "cancelled" and events[-1].step == 2
    assert any(e.event == "checkpoint" for e in events) and not (tmp_path / "out" / "model").exists()
    job.params.pop("export")
    job.resume = True
    again: list[ProgressEvent] = []
    assert run_job(job, again.append, CancelToken(), prepare(job)) == 0
    steps = [e.step for e in again if e.event == "progress" and e.step]
    assert steps == [3, 4, 5] and again[-1].event == "finished"
