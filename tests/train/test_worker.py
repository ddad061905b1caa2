"""The worker process (`python -m app.train.worker SPEC.json`): JSON-lines events on stdout, "stop" on stdin
cancels with a checkpoint, resume finishes, bad specs exit 2 with one stderr line, failures emit "failed"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from app.core.jobs import JobSpec, decode_event  # noqa: E402
from app.train import worker  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def start(spec_path: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    err = tmp_path / f"{spec_path.stem}.stderr"
    proc = subprocess.Popen([sys.executable, "-m", "app.train.worker", str(spec_path)], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(err, "w"), text=True)
    return proc, err


def read_events(proc: subprocess.Popen, stop_after_progress: bool = False, timeout: float = 60) -> list:
    """Read events until a terminal one; optionally send "stop" after the first progress event."""
    events, sent, t0 = [], False, time.monotonic()
    for line in proc.stdout:
        ev = decode_event(line)  # every stdout line must be an event
        events.append(ev)
        if stop_after_progress and ev.event == "progress" and not sent:
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            sent = True
        if ev.terminal or time.monotonic() - t0 > timeout:
            break
    proc.stdin.close()
    proc.wait(30)
    return events


def test_stop_then_resume(tmp_path, tiny_job):
    spec = tiny_job(tmp_path / "run", steps=400, batch_size=8, checkpoint_every=1000)
    path = spec.save(tmp_path / "job.json")
    proc, _ = start(path, tmp_path)
    events = read_events(proc, stop_after_progress=True)
    assert events[0].event == "started" and events[-1].event == "cancelled", [e.event for e in events]
    assert proc.returncode == worker.EXIT_CANCELLED
    ckpt = tmp_path / "run" / "ckpt_last.pt"
    assert ckpt.is_file() and events[-1].path == str(ckpt)
    stopped = events[-1].step
    assert 0 < stopped < 400

    spec.resume = True
    proc, _ = start(spec.save(tmp_path / "resume.json"), tmp_path)
    events = read_events(proc)
    assert events[-1].event == "finished", [(e.event, e.message) for e in events]
    assert proc.returncode == 0
    steps = [e.step for e in events if e.event == "progress"]
    assert steps[0] == stopped + 1 and steps[-1] == 400


def test_closed_stdin_cancels(tmp_path, tiny_job):
    proc, _ = start(tiny_job(tmp_path / "run", steps=100000).save(tmp_path / "job.json"), tmp_path)
    proc.stdin.close()  # the GUI went away
    out = proc.stdout.read()
    proc.wait(60)
    events = [decode_event(line) for line in out.splitlines() if line.strip()]
    assert events[-1].event == "cancelled" and proc.returncode == worker.EXIT_CANCELLED
    assert (tmp_path / "run" / "ckpt_last.pt").is_file()


@pytest.mark.parametrize("content, words", [
    ({"kind": "no-such-kind", "out_dir": "x"}, "unknown kind 'no-such-kind'"),
    ({"kind": "train", "params": {"model": "nope", "steps": 1, "data": {"entry": "a:b"}}, "out_dir": "x"},
     "unknown model config"),
    ({"kind": "train", "bogus": 1}, "unknown field(s) bogus"),
    ("{not json", "not a readable JSON job spec"),
])
def test_bad_spec_exits_2_with_one_line(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    proc, err = start(path, tmp_path)
    out, _ = proc.communicate(timeout=60)
    lines = err.read_text().strip().splitlines()
    assert proc.returncode == worker.EXIT_BAD_SPEC
    assert out == "" and len(lines) == 1 and words in lines[0], lines


def test_unwritable_out_dir_fails_cleanly(tmp_path, tiny_job):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc, err = start(tiny_job(blocker / "run").save(tmp_path / "job.json"), tmp_path)
    events = read_events(proc)
    assert proc.returncode == worker.EXIT_FAILED
    last = events[-1]
    assert last.event == "failed" and str(blocker / "run") in last.message
    assert "cannot create the output folder" in last.message and "\n" not in last.message
    assert "Traceback" not in err.read_text()


def test_in_process_registry_and_failures(tmp_path):
    seen = []

    def boom(spec, on_event, cancel):
        raise RuntimeError("kaput\nsecond line")

    worker.register_job("boom-test", boom)
    assert "boom-test" in worker.job_kinds() and "train" in worker.job_kinds()
    code = worker.run_job(JobSpec("boom-test", out_dir=str(tmp_path)), seen.append, worker.CancelToken())
    assert code == worker.EXIT_FAILED and seen[-1].event == "failed" and seen[-1].message == "RuntimeError: kaput"

    worker.register_job("quiet-test", lambda spec, on_event, cancel: None)
    seen.clear()
    assert worker.run_job(JobSpec("quiet-test"), seen.append, worker.CancelToken()) == 0
    assert [e.event for e in seen] == ["finished"]
