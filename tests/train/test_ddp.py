"""Multi-process training (`vitascope train RECIPE --nproc 2` → torchrun --standalone, DDP on gloo), the ddp hooks
being identities in one process, the wizard job (train → compress), the headless run of a wizard recipe, and a
checkpoint that cannot be written keeping the last good one."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from app.core.errors import JobError  # noqa: E402
from app.core.jobs import CancelToken, JobSpec, ProgressEvent  # noqa: E402
from app.train import ddp, ddp_launch, worker  # noqa: E402
from app.train.checkpoint import load_checkpoint  # noqa: E402
from tests.train.conftest import tiny_recipe  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
RECIPE = tiny_recipe({"n_train": 256, "n_val": 32}, {
    "steps": 24, "batch_size": 32, "lr": 3e-3, "warmup_steps": 2, "log_every": 2, "eval_every": 12,
    "checkpoint_every": 12}, name="tiny-ddp")
LINE = re.compile(r"^\[(\w+)\](?: (\d+)/(\d+))?(.*)$")


def parse_events(stderr: str) -> list[tuple[str, int | None, str]]:
    out = []
    for line in stderr.splitlines():
        m = LINE.match(line)
        if m:
            out.append((m.group(1), int(m.group(2)) if m.group(2) else None, m.group(4)))
    return out


def test_hooks_are_identities_without_a_process_group():
    d = ddp.context()
    assert d == ddp.Dist(0, 1) and not d.enabled and d.main
    m = torch.nn.Linear(2, 2)
    x = torch.arange(6.0)
    assert d.wrap(m) is m and d.shard(x) is x
    assert d.mean(torch.tensor(1.5)) == 1.5 and d.any(True) and not d.any(False)
    events: list[ProgressEvent] = []
    assert d.events(events.append) == events.append
    assert ddp.Dist(1, 2).shard(x).tolist() == [1.0, 3.0, 5.0]


def test_torchrun_command():
    cmd = ddp_launch.torchrun_command("r.toml", 2, out="/o", resume=True)
    assert cmd[:4] == [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=2" in cmd and cmd[-4:] == ["r.toml", "--out", "/o", "--resume"]


@pytest.mark.slow  # two torchrun ranks training
def test_two_processes_match_one(tmp_path, one_torch_thread):
    """Both ranks run, rank 0 alone writes one checkpoint and the events, which are the single-process events;
    the loss decreases and the weights match a single-process run on the same global batches."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "app", "train", str(recipe), "--nproc", "2", "--out",
                           str(tmp_path / "ddp")], capture_output=True, text=True, timeout=300, cwd=REPO)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rank 0 of 2 done (exit code 0)" in proc.stderr and "rank 1 of 2 done (exit code 0)" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["ckpt_last.pt"]
    ddp_events = parse_events(proc.stderr)

    from app.train.commands import load_recipe

    single: list[ProgressEvent] = []
    spec = load_recipe(recipe, str(tmp_path / "one"))
    assert worker.run_job(spec, single.append, CancelToken()) == 0
    want = [(e.event, e.step) for e in single]
    assert [(k, s) for k, s, _ in ddp_events] == want
    losses = [float(re.search(r"loss ([\d.e+-]+)", rest).group(1)) for k, _, rest in ddp_events if k == "progress"]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    one_loss = [e.values["loss"] for e in single if e.event == "progress"]
    assert losses[0] == pytest.approx(one_loss[0], rel=1e-3)
    a = load_checkpoint(tmp_path / "ddp" / "ckpt_last.pt")["model"]
    b = load_checkpoint(tmp_path / "one" / "ckpt_last.pt")["model"]
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"\ntorchrun 2 processes: {seconds:.1f} s; max |w_ddp - w_single| {worst:.2e}")
    assert worst < 1e-3


def _shapes_wizard_spec(out: Path, model_id: str, n_train: int, n_val: int, steps: int, distill_steps: int):
    """A demo-shapes wizard spec: train a depth-2 model, then reparameterize it to depth 1 with KD."""
    from app.core.registry import discover
    from app.core.wizard_spec import WizardSpec, available_tasks

    spec = WizardSpec()
    spec.set_task(next(t for t in available_tasks(discover(use_entry_points=False).plugins)
                       if t.id == "demo.shapes"))
    spec.data.n_train, spec.data.n_val, spec.data.image_size = n_train, n_val, 32
    spec.start.overrides = {"depth": 2, "width": 32, "heads": 2}
    spec.recipe.steps, spec.recipe.batch_size, spec.recipe.threads = steps, 16, 1
    spec.recipe.reparam_depth, spec.recipe.distill, spec.recipe.distill_steps = 1, "kd", distill_steps
    spec.model_id, spec.out_dir = model_id, str(out)
    return spec


@pytest.mark.slow  # the wizard job end to end: train, then distil
def test_wizard_job_trains_then_compresses(tmp_path, one_torch_thread):
    from app.core.card import read_card

    spec = _shapes_wizard_spec(tmp_path / "out", "shapes-small", 96, 32, steps=12, distill_steps=10)
    events: list[ProgressEvent] = []
    assert worker.run_job(spec.to_job(), events.append, CancelToken()) == 0
    kinds = [e.event for e in events]
    assert kinds.count("finished") == 1 and kinds[-1] == "finished" and kinds.count("artifact") == 2
    folder = Path(events[-1].path)
    assert folder == tmp_path / "out" / "compressed"
    card = read_card(folder)
    assert card.id == "shapes-small" and card.task == "demo.shapes"
    assert any("reparam2to1" in s for s in card.provenance["steps"])
    assert "accuracy" in events[-1].values


@pytest.mark.slow  # the wizard job trains before it distils
def test_wizard_job_cancels_during_compression(tmp_path, one_torch_thread):
    """Cancel while the student distils: the job ends "cancelled" soon after (not at the end of distillation), the
    trained model stays and no compressed folder is written."""
    spec = _shapes_wizard_spec(tmp_path / "out", "shapes-cancelled", 64, 16, steps=6, distill_steps=400)
    events: list[ProgressEvent] = []
    cancel = CancelToken()

    def on_event(ev: ProgressEvent) -> None:
        events.append(ev)
        if ev.event == "progress" and "distill_loss" in ev.values:
            cancel.cancel()

    assert worker.run_job(spec.to_job(), on_event, cancel) == worker.EXIT_CANCELLED
    distill = [e for e in events if e.event == "progress" and "distill_loss" in e.values]
    assert len(distill) == 1 and distill[0].step == 10 and distill[0].total == 400
    assert events[-1].event == "cancelled" and "nothing was written" in events[-1].message
    assert (tmp_path / "out" / "model" / "model.onnx").is_file()
    assert not (tmp_path / "out" / "compressed").exists()


@pytest.mark.slow  # the wizard's recipe trained and compressed headless
def test_headless_wizard_recipe_runs_the_same(tmp_path, one_torch_thread):
    from app.core.registry import discover
    from app.core.wizard_spec import WizardSpec, available_tasks
    from app.train.commands import train_cmd

    spec = WizardSpec()
    spec.set_task(next(t for t in available_tasks(discover(use_entry_points=False).plugins)
                       if t.id == "demo.shapes"))
    spec.data.n_train, spec.data.n_val, spec.data.image_size = 64, 16, 32
    spec.start.overrides = {"depth": 1, "width": 32, "heads": 2}
    spec.recipe.steps, spec.recipe.batch_size, spec.recipe.threads = 6, 16, 1
    spec.model_id, spec.out_dir = "shapes-headless", str(tmp_path / "out")
    recipe = spec.save_recipe(tmp_path / "shapes-headless.toml")
    code = train_cmd(argparse.Namespace(recipe=str(recipe), out=None, resume=False, nproc=1))
    assert code == 0
    assert (tmp_path / "out" / "model" / "model.onnx").is_file() and (tmp_path / "out" / "ckpt_last.pt").is_file()


def test_unwritable_checkpoint_keeps_the_last_good_one(tmp_path, one_torch_thread):
    """The second checkpoint cannot be written (its temp path is taken by a folder: honest even as root):
    a clear JobError, and ckpt_last.pt still holds the first checkpoint."""
    from app.train import loop

    job = JobSpec("train", {
        "model": "vit-micro", "model_overrides": {"depth": 1, "width": 32, "heads": 2, "num_outputs": 4,
                                                  "img_size": 32},
        "data": {"entry": "plugins.demo.shapes:make_dataset", "seed": 1,
                 "params": {"n_train": 64, "n_val": 16, "size": 32}},
        "steps": 12, "batch_size": 16, "checkpoint_every": 4, "log_every": 1, "threads": 1,
    }, out_dir=str(tmp_path), seed=0)

    def on_event(ev: ProgressEvent) -> None:
        if ev.event == "checkpoint" and ev.step == 4:
            (tmp_path / "ckpt_last.pt.tmp").mkdir()

    with pytest.raises(JobError, match=r"cannot write checkpoint \(.*\); the previous checkpoint is kept"):
        loop.train(loop.TrainSpec.from_job(job), on_event, CancelToken())
    assert load_checkpoint(tmp_path / "ckpt_last.pt")["step"] == 4
