"""The wizard's "Compress a CLIP model" job on a tiny random teacher saved in the flat open_clip layout and generated
captioned scenes: through the worker process it writes a student folder the zoo installs and opens, smaller than the
teacher, with both models' recall on the card; "stop" cancels it; bad inputs end in one line, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from app.cli import main  # noqa: E402
from app.core.errors import BadInput, JobError  # noqa: E402
from app.core.jobs import JobSpec, decode_event  # noqa: E402
from app.core.metrics import T2I_RECALL_AT_10  # noqa: E402
from app.core.registry import discover  # noqa: E402
from app.core.wizard_clip import student_config  # noqa: E402
from app.core.wizard_clip_eval import result_rows  # noqa: E402
from app.core.wizard_spec import WizardSpec, available_tasks  # noqa: E402
from app.core.zoo import Zoo, open_folder  # noqa: E402
from app.train import worker  # noqa: E402
from app.train.clip_model import CLIP, TINYCLIP_8M_16, ClipConfig  # noqa: E402
from bench.clip_scenes import make_scenes  # noqa: E402
from plugins.textsearch.clipcard import ROLES, TASK  # noqa: E402
from plugins.textsearch.evaluate import recall  # noqa: E402
from plugins.textsearch.model import ClipModel  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
KIND = "app.train.clip_compress_job:run"
TEACHER = ClipConfig(embed_dim=32, image_size=32, patch_size=16, vision_width=128, vision_layers=2, vision_heads=2,
                     vision_mlp=256, context_length=16, text_width=128, text_heads=2, text_layers=2, text_mlp=256)


def save_scenes(folder: Path, n: int, seed: int, prefix: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    images, captions = make_scenes(n, seed=seed, size=32)
    rows = []
    for i, (img, caps) in enumerate(zip(images, captions, strict=True)):
        name = f"{prefix}{i:03d}.png"
        Image.fromarray(img).save(folder / name)
        rows += [{"image": name, "caption": c} for c in caps]
    path = folder.parent / f"{prefix}captions.json"
    path.write_text(json.dumps(rows))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A random teacher in open_clip's flat layout, 24 training and 8 validation scenes with two captions each."""
    root = tmp_path_factory.mktemp("clipjob")
    torch.manual_seed(0)
    ckpt = root / "teacher.pt"
    torch.save(CLIP(TEACHER).state_dict(), ckpt)
    return {"root": root, "teacher": ckpt, "captions": save_scenes(root / "images", 24, 1, "train"),
            "images": root / "images", "val_captions": save_scenes(root / "val", 8, 2, "val"),
            "val_images": root / "val"}


def params(data, **over) -> dict:
    p = {"teacher": str(data["teacher"]), "captions": str(data["captions"]), "images": str(data["images"]),
         "val_captions": str(data["val_captions"]), "val_images": str(data["val_images"]), "preset": "half",
         "steps": 30, "batch_size": 8, "lr": 1e-3, "threads": 1, "model_id": "tiny-student", "latency_runs": 3}
    p.update(over)
    return {k: v for k, v in p.items() if v is not None}


def run_worker(spec: JobSpec, tmp_path: Path, stop_on_loss: bool = False, timeout: float = 120):
    """The job in a worker process (`python -m app.train.worker SPEC.json`): its events and exit code."""
    path = spec.save(tmp_path / f"{spec.name}.json")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "app.train.worker", str(path)], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events, t0, sent = [], time.monotonic(), False
    for line in proc.stdout:
        ev = decode_event(line)
        events.append(ev)
        if stop_on_loss and not sent and ev.event == "progress" and "loss" in ev.values:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            sent = True
        if ev.terminal or time.monotonic() - t0 > timeout:
            break
    proc.stdin.close()
    proc.wait(60)
    return events, proc.returncode, proc.stderr.read()


def test_worker_compresses_into_a_model_the_zoo_installs_and_opens(data, tmp_path):
    spec = JobSpec(KIND, params(data), out_dir=str(tmp_path / "run"), name="compress", seed=3)
    events, code, err = run_worker(spec, tmp_path)
    assert code == worker.EXIT_OK and events[-1].event == "finished", (events[-1], err[-2000:])
    losses = [e.values["loss"] for e in events if e.event == "progress" and "loss" in e.values]
    steps = [e.step for e in events if e.event == "progress" and "loss" in e.values]
    assert steps[-1] == 30 and all(e.total == 30 for e in events if "loss" in e.values)
    assert np.mean(losses[-3:]) < losses[0]  # the student moves towards the teacher's affinities
    folder = Path(events[-1].path)
    assert folder == tmp_path / "run" / "model"

    zoo = Zoo([tmp_path / "zoo"], install_root=tmp_path / "zoo")
    card = zoo.install(folder)
    assert card.id == "tiny-student" and card.task == TASK
    assert zoo.resolve("tiny-student", TASK) == tmp_path / "zoo" / "tiny-student"
    handle = open_folder(zoo.resolve("tiny-student", TASK), roles=ROLES)
    prov = handle.card.provenance
    assert prov["preset"] == "half" and prov["steps"] == 30 and prov["seed"] == 3 and prov["layout"] == "open_clip"
    assert prov["teacher"]["checkpoint"] == "teacher.pt" and len(prov["teacher"]["checkpoint_sha256"]) == 64
    assert "24 images, 48 captions" in prov["training_data"] and prov["validation_captions"] == 16
    arch = handle.card.arch
    assert (arch["vision_width"], arch["vision_layers"], arch["text_width"], arch["text_layers"]) == (64, 1, 64, 1)
    assert arch["params"] < prov["teacher"]["params"]
    assert 0 < handle.card.latency["image_ms"] and 0 < prov["teacher"]["image_ms"]
    metrics = {m["name"]: m["value"] for m in handle.card.metrics}
    for who in ("", "teacher_"):
        for d in ("t2i", "i2t"):
            r = [metrics[f"{who}{d}_R@{k}"] for k in (1, 5, 10)]
            assert 0 <= r[0] <= r[1] <= r[2] <= 100
    assert events[-1].values["t2i_R@10"] == metrics["t2i_R@10"]

    # the installed student searches: its towers run and agree with the card's size
    model = ClipModel(zoo.resolve("tiny-student", TASK))
    emb = model.encode_texts(["a red circle on a grey background"])
    assert emb.shape == (1, 32) and abs(float(np.linalg.norm(emb)) - 1) < 1e-4
    new, teacher = result_rows(folder)
    assert (new.role, teacher.role) == ("new", "teacher") and new.params < teacher.params
    assert new.bytes < teacher.bytes and new.value == metrics["t2i_R@10"] and new.n == 16
    assert set(new.per_class) == {f"{d} R@{k}" for d in ("t2i", "i2t") for k in (1, 5, 10)}


def test_stop_cancels_and_writes_nothing(data, tmp_path):
    spec = JobSpec(KIND, params(data, steps=100_000), out_dir=str(tmp_path / "run"), name="cancel", seed=0)
    t0 = time.monotonic()
    events, code, err = run_worker(spec, tmp_path, stop_on_loss=True)
    assert events[-1].event == "cancelled" and code == worker.EXIT_CANCELLED, (events[-1], err[-2000:])
    assert 0 < events[-1].step < 100_000 and time.monotonic() - t0 < 60
    assert not (tmp_path / "run" / "model").exists()


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_bad_inputs_are_one_line(data, tmp_path):
    bad_rows = _write(tmp_path / "rows.json", json.dumps([{"image": "train000.png"}]))
    gone = _write(tmp_path / "gone.json", json.dumps([{"image": "nope.png", "caption": "x"}]))
    cases = {
        "teacher": (params(data, teacher=str(tmp_path / "none.pt")), "none.pt: no such checkpoint file"),
        "json": (params(data, captions=_write(tmp_path / "c.json", "{not json")), "not a JSON list"),
        "rows": (params(data, captions=bad_rows), "row 0 needs a string 'image' and a string 'caption'"),
        "image": (params(data, captions=gone), "nope.png: no such image (1 of the 1 images"),
        "val": (params(data, val_images=str(tmp_path)), "no such image"),
        "preset": (params(data, preset="tiny"), "params.preset must be one of"),
        "folder": (params(data, images=str(tmp_path / "nowhere")), "no such images folder"),
    }
    for name, (p, want) in cases.items():
        with pytest.raises(JobError) as e:
            worker.prepare(JobSpec(KIND, p, out_dir=str(tmp_path / name)))
        assert want in str(e.value) and "\n" not in str(e.value), name

    # a file torch cannot read, and a state dict that is not a CLIP: "failed" with one line, no traceback
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    wrong = tmp_path / "wrong.pt"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, wrong)
    for ckpt, want in ((junk, "not a readable torch checkpoint"), (wrong, "not an open_clip/TinyCLIP ViT")):
        spec = JobSpec(KIND, params(data, teacher=str(ckpt)), out_dir=str(tmp_path / ckpt.stem))
        events = []
        assert worker.run_job(spec, events.append, worker.CancelToken()) == worker.EXIT_FAILED
        assert events[-1].event == "failed" and want in events[-1].message and "\n" not in events[-1].message
        assert "Traceback" not in events[-1].message
    # a preset this teacher cannot take (one head per tower: the width cannot be halved keeping the head width)
    one_head = tmp_path / "one-head.pt"
    torch.save(CLIP(ClipConfig(embed_dim=16, image_size=32, patch_size=16, vision_width=64, vision_layers=2,
                               vision_heads=1, vision_mlp=64, context_length=8, text_width=64, text_heads=1,
                               text_layers=2, text_mlp=64)).state_dict(), one_head)
    events = []
    spec = JobSpec(KIND, params(data, teacher=str(one_head)), out_dir=str(tmp_path / "one"))
    assert worker.run_job(spec, events.append, worker.CancelToken()) == worker.EXIT_FAILED
    assert "cannot be cut to 32" in events[-1].message


def test_recipe_cli_refuses_bad_input_with_exit_2(data, tmp_path, capsys):
    import tomli_w

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(tomli_w.dumps({"kind": KIND, "out_dir": str(tmp_path / "out"),
                                     "params": params(data, images=str(data["val_images"]))}))
    assert main(["train", str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert "train000.png: no such image" in err and len(err.splitlines()) == 1


def test_student_presets():
    t = TINYCLIP_8M_16.to_dict()
    half = student_config(t, "half")
    assert (half["vision_width"], half["vision_heads"], half["vision_layers"], half["vision_mlp"]) == (128, 2, 5, 512)
    assert (half["text_width"], half["text_heads"], half["text_layers"]) == (128, 2, 1)
    assert half["embed_dim"] == 512 and half["image_size"] == 224 and half["context_length"] == 77
    width = student_config(t, "half-width")
    assert width["vision_layers"] == 10 and width["vision_width"] == 128
    layers = student_config(t, "half-layers")
    assert layers["vision_width"] == 256 and layers["vision_layers"] == 5 and layers["text_layers"] == 1
    one = {**t, "vision_layers": 1, "text_layers": 1}
    with pytest.raises(BadInput, match="leaves this teacher as it is"):
        student_config(one, "half-layers")
    with pytest.raises(BadInput, match="not one of"):
        student_config(t, "quarter")


def test_headline_scorer_is_the_plugins_recall():
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(60, 25))
    owner = rng.integers(0, 25, 60)
    sim[np.arange(60), owner] += rng.uniform(0, 3, 60)
    value, per = T2I_RECALL_AT_10.score(sim, owner, None)
    want = recall(sim, owner)["t2i"]
    assert value == want["10"] and per == {f"R@{k}": want[str(k)] for k in (1, 5, 10)}


def test_wizard_spec_builds_the_job(data, tmp_path):
    tasks = {t.id: t for t in available_tasks(discover(use_entry_points=False).plugins)}
    task = tasks["textsearch.clip"]
    assert task.plugin == "textsearch" and task.problem == "clip" and task.title == "Compress a CLIP model"
    spec = WizardSpec()
    spec.set_task(task)
    spec.out_dir = str(tmp_path / "out")
    assert any("teacher checkpoint" in p for p in spec.problems())
    c = spec.clip
    c.teacher, c.captions, c.images = str(data["teacher"]), str(data["captions"]), str(data["images"])
    c.steps, c.batch_size = 5, 4
    assert spec.problems() == []
    spec.model_id = "Bad Id"
    assert any("model id" in p for p in spec.problems())
    spec.model_id = "textsearch-clip-small"
    job = spec.to_job()
    assert job.kind == KIND and job.seed == task.default_seed and job.out_dir == spec.out_dir
    assert job.params["teacher"] == str(data["teacher"]) and "val_captions" not in job.params
    worker.prepare(job)  # a valid spec
    loaded = JobSpec.from_dict(json.loads(job.to_json()))
    assert loaded == job
