"""The jobs panel: progress with an ETA measured after warm-up, Cancel → "cancelled", a killed worker process →
"failed", running jobs listed before finished ones, and finished jobs showing their final state."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from app.core.errors import BadInput
from app.core.jobs import JobSpec, ProgressEvent
from app.gui.dispatch import Dispatcher
from app.gui.jobs_panel import JobsPanel, format_eta
from app.gui.jobs_qt import JobsModel


def _panel(qtbot) -> tuple[JobsModel, JobsPanel]:
    dispatch = Dispatcher()
    model = JobsModel(dispatch)
    panel = JobsPanel(model)
    qtbot.addWidget(panel)
    return model, panel


def _job_past(qtbot, name: str, fn, step: int, timeout: int):
    """A panel running the thread job `fn`, once the job has reported `step`: (model, panel, handle, record)."""
    model, panel = _panel(qtbot)
    handle = model.run_thread_job(name, fn)
    rec = model.records[0]
    qtbot.waitUntil(lambda: (rec.step or 0) >= step, timeout=timeout)
    return model, panel, handle, rec


def _counting(token, emit):
    for i in range(1, 2001):
        token.check()
        emit(ProgressEvent("progress", step=i, total=2000, message=f"step {i}"))
        time.sleep(0.005)
    return "done"


def test_thread_job_shows_progress_and_cancel_marks_it_cancelled(qtbot):
    model, panel, handle, rec = _job_past(qtbot, "count", _counting, 20, timeout=3000)
    panel._tick()
    bar = panel._bars[rec.id]
    assert bar.format().startswith(f"{rec.step}/2000") and "measuring speed" in bar.format()  # still warming up
    qtbot.waitUntil(lambda: panel._tick() or "ETA" in bar.format(), timeout=5000)
    assert bar.format().startswith(f"{rec.step}/2000")
    assert panel.row_state(rec) == "running" and panel.row_message(rec).startswith("step ")
    qtbot.mouseClick(panel._cancel[rec.id], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.row_state(rec) == "cancelled", timeout=3000)
    assert handle.wait(2) and rec.id not in panel._cancel  # an ended job has no Cancel button


def test_thread_job_result_and_error(qtbot):
    model, panel = _panel(qtbot)
    results, errors = [], []
    model.run_thread_job("ok", lambda tok, emit: 42, on_result=results.append)

    def bad(tok, emit):
        raise BadInput("scan.png: not a readable image")

    model.run_thread_job("bad", bad, on_error=errors.append)
    ok, failed = model.records
    qtbot.waitUntil(lambda: not ok.active and not failed.active, timeout=3000)
    assert results == [42] and panel.row_state(ok) == "finished"
    assert errors == ["scan.png: not a readable image"]
    assert panel.row_state(failed) == "failed" and "not a readable image" in panel.row_message(failed)
    assert panel.rows() == [failed, ok] and panel.finished_group.text(0) == "Finished (2)"
    panel.clear_finished()
    assert panel.rows() == [] and model.records == []


def test_killed_worker_process_shows_failed(qtbot, tmp_path):
    model, panel = _panel(qtbot)
    job = model.add_process_job(JobSpec(kind="no-such-kind", name="doomed", out_dir=str(tmp_path / "job")))
    rec = model.records[0]
    assert rec.kind == "process" and panel.row_state(rec) == "running"
    job.kill()  # SIGKILL long before the interpreter could finish starting
    qtbot.waitUntil(lambda: panel.row_state(rec) == "failed", timeout=10000)
    assert rec.message.startswith("failed after ") and "signal 9" in rec.message
    assert job.wait(5)


def test_cancel_all_and_join_stops_thread_jobs(qtbot):
    model, _panel_ = _panel(qtbot)
    handles = [model.run_thread_job(f"count {i}", _counting) for i in range(3)]
    qtbot.waitUntil(lambda: all((r.step or 0) > 1 for r in model.records), timeout=3000)
    assert model.cancel_all_and_join(5)
    assert all(h.done for h in handles)
    assert {r.state for r in model.records} == {"cancelled"}


def test_format_eta():
    assert format_eta(None) == ""
    assert format_eta(65.4) == "ETA 1:05"
    assert format_eta(3725) == "ETA 1:02:05"


def test_eta_restarts_with_a_new_stage():
    """Training then distillation in one job: the second stage's ETA comes from its own speed, measured after its
    own warm-up, not from the first stage's."""
    from app.gui.jobs_qt import JobRecord

    rec = JobRecord("wizard", "process")
    for step in range(0, 101, 10):  # 100 training steps at 0.1 s
        rec.apply(ProgressEvent("progress", step=step, total=100), now=1000.0 + step * 0.1)
    assert rec.seconds_per_step() == pytest.approx(0.1)
    t = 1010.0
    for step in range(0, 41, 2):  # then distillation: 300 steps at 0.2 s
        rec.apply(ProgressEvent("progress", step=step, total=300), now=t + step * 0.2)
    assert rec.fraction == 40 / 300
    assert rec.seconds_per_step() == pytest.approx(0.2)
    assert rec.eta_s(now=t + 40 * 0.2) == pytest.approx(260 * 0.2)


def _warm_then_steady(token, emit):
    """A job with a known speed: 3 slow warm-up steps (0.4 s each), then 0.02 s per step."""
    for i in range(1, 301):
        token.check()
        time.sleep(0.4 if i <= 3 else 0.02)
        emit(ProgressEvent("progress", step=i, total=300, message=f"step {i}"))
    return "done"


def test_eta_is_measured_after_warm_up_against_a_known_step_time(qtbot):
    model, panel, handle, rec = _job_past(qtbot, "known speed", _warm_then_steady, 120, timeout=20_000)
    sps = rec.seconds_per_step()
    assert sps is not None and 0.019 <= sps < 0.03  # sleep overshoots a little; the warm-up is not in it
    left = rec.eta_s()
    truth = (300 - rec.step) * 0.02
    assert 0.8 * truth <= left <= 1.4 * truth + 0.1
    # the old rate-since-the-first-event would have been (1.2 s + steps × 0.02) / steps: far higher
    naive = (1.2 + (rec.step - 1) * 0.02) / (rec.step - 1)
    assert naive > 1.3 * sps
    handle.cancel()  # never leave a job emitting into a panel that is about to be deleted
    assert handle.wait(5)


def _stale(token, emit):
    emit(ProgressEvent("progress", message="Reading ecg-demo-4.hea…"))
    return 1


def _slow(token, emit):
    for i in range(400):
        token.check()
        emit(ProgressEvent("progress", step=i, total=400))
        time.sleep(0.01)


def test_running_jobs_are_listed_first_and_finished_ones_show_their_end(qtbot):
    model, panel = _panel(qtbot)
    model.run_thread_job("read", _stale)
    read = model.records[0]
    qtbot.waitUntil(lambda: not read.active, timeout=3000)
    assert panel.row_message(read).startswith("finished in ") and "Reading" not in panel.row_message(read)
    model.run_thread_job("train", _slow)
    train = model.records[1]
    assert panel.rows() == [train, read]  # the running job above the finished one, though started later
    assert panel.running_group.text(0) == "Running (1)" and panel.finished_group.text(0) == "Finished (1)"
    panel.tree.setCurrentItem(panel._items[train.id])
    assert panel.selected() is train
    panel.tree.setFocus()
    qtbot.keyClick(panel.tree, Qt.Key.Key_Delete)  # the keyboard cancels the selected job
    qtbot.waitUntil(lambda: train.state == "cancelled", timeout=3000)
    assert panel.rows() == [train, read] and panel.running_group.text(0) == "Running (0)"
    assert panel.row_message(train).startswith("cancelled at step ")
    assert train.id not in panel._cancel  # no Cancel button left on an ended job
