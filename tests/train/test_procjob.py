"""ProcessJob (app.core) driving the real worker process: cancel writes a checkpoint, resume finishes,
a SIGKILLed worker is reported as failed."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("torch")

from app.core.jobs import JobSpec, ProgressEvent  # noqa: E402
from app.core.procjob import ProcessJob  # noqa: E402


def tiny_spec(out_dir, steps: int = 3000, resume: bool = False) -> JobSpec:
    return JobSpec("train", {
        "model": "vit-micro", "model_overrides": {"depth": 1, "width": 32, "heads": 2, "num_outputs": 4},
        "data": {"entry": "plugins.demo.shapes:make_dataset", "seed": 1, "params": {"n_train": 256, "n_val": 64}},
        "steps": steps, "batch_size": 16, "lr": 1e-3, "log_every": 5, "checkpoint_every": 1000, "threads": 1,
    }, out_dir=str(out_dir), name="procjob-test", seed=0, resume=resume)


class Recorder:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.progress = threading.Event()
        self.done = threading.Event()

    def __call__(self, ev: ProgressEvent) -> None:
        self.events.append(ev)
        if ev.event == "progress":
            self.progress.set()
        if ev.terminal:
            self.done.set()

    def kinds(self) -> list[str]:
        return [e.event for e in self.events]


def test_cancel_then_resume(tmp_path):
    rec = Recorder()
    job = ProcessJob(tiny_spec(tmp_path), rec).start()
    assert rec.progress.wait(90), rec.kinds()
    job.cancel()
    assert job.wait(60)
    assert rec.events[-1].event == "cancelled", rec.kinds()
    assert (tmp_path / "ckpt_last.pt").is_file()
    stopped_at = max(e.step or 0 for e in rec.events)

    rec2 = Recorder()
    spec = tiny_spec(tmp_path, steps=stopped_at + 20, resume=True)
    job2 = ProcessJob(spec, rec2, spec_path=tmp_path / "resume.json").start()
    assert job2.wait(120)
    assert rec2.events[-1].event == "finished", [(e.event, e.message) for e in rec2.events]
    steps = [e.step for e in rec2.events if e.event == "progress" and e.step]
    assert steps and min(steps) > stopped_at - 5  # continued, did not start over


def test_killed_worker_reported_failed(tmp_path):
    rec = Recorder()
    job = ProcessJob(tiny_spec(tmp_path), rec).start()
    assert rec.progress.wait(90)
    job.kill()
    assert rec.done.wait(30)
    last = rec.events[-1]
    assert last.event == "failed" and "killed by signal 9" in last.message


def test_unknown_kind_fails_cleanly(tmp_path):
    rec = Recorder()
    job = ProcessJob(JobSpec("no-such-kind", out_dir=str(tmp_path)), rec).start()
    assert job.wait(60)
    time.sleep(0.1)
    assert rec.events[-1].event == "failed"
    assert "no-such-kind" in rec.events[-1].message and "Traceback" not in rec.events[-1].message
