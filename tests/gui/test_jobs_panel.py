"""The jobs panel: progress with ETA, Cancel → "cancelled", a killed worker process → "failed"."""

from __future__ import annotations

import time

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


def _counting(token, emit):
    for i in range(1, 2001):
        token.check()
        emit(ProgressEvent("progress", step=i, total=2000, message=f"step {i}"))
        time.sleep(0.005)
    return "done"


def test_thread_job_shows_progress_and_cancel_marks_it_cancelled(qtbot):
    model, panel = _panel(qtbot)
    handle = model.run_thread_job("count", _counting)
    rec = model.records[0]
    qtbot.waitUntil(lambda: (rec.step or 0) >= 20, timeout=3000)
    panel._tick()
    bar = panel._bars[rec.id]
    assert bar.format().startswith(f"{rec.step}/2000") and "ETA" in bar.format()
    assert panel.row_state(rec) == "running" and panel.row_message(rec).startswith("step ")
    qtbot.mouseClick(panel._cancel[rec.id], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.row_state(rec) == "cancelled", timeout=3000)
    assert handle.wait(2) and not panel._cancel[rec.id].isEnabled()


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
    panel.clear_finished()
    assert panel.tree.topLevelItemCount() == 0


def test_killed_worker_process_shows_failed(qtbot, tmp_path):
    model, panel = _panel(qtbot)
    job = model.add_process_job(JobSpec(kind="no-such-kind", name="doomed", out_dir=str(tmp_path / "job")))
    rec = model.records[0]
    assert rec.kind == "process" and panel.row_state(rec) == "running"
    job.kill()  # SIGKILL long before the interpreter could finish starting
    qtbot.waitUntil(lambda: panel.row_state(rec) == "failed", timeout=10000)
    assert rec.message.startswith("worker ") and "signal 9" in rec.message
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
    """Training then distillation in one job: the second stage's ETA comes from its own rate, not from the
    first stage's step count."""
    from app.gui.jobs_qt import JobRecord

    rec = JobRecord("wizard", "process")
    rec.apply(ProgressEvent("progress", step=0, total=100))
    rec._rate_t0 -= 10.0  # 100 training steps in 10 s
    rec.apply(ProgressEvent("progress", step=100, total=100))
    rec.apply(ProgressEvent("progress", step=10, total=300))
    assert rec.fraction == 10 / 300
    rec._rate_t0 -= 2.0  # then 10 distillation steps took 2 s more
    rec.apply(ProgressEvent("progress", step=20, total=300))
    assert rec.eta_s() is not None and 50 < rec.eta_s() < 70  # 280 steps at 10 steps per 2 s ≈ 56 s
