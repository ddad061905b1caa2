"""Wizard page 5: the run — a worker process (`vitascope worker SPEC.json`) with live loss and metric curves, a
progress bar with ETA and a log; Cancel stops it with a checkpoint, Resume continues from it; a crashed or killed
worker is shown as failed. Curves are redrawn on a timer, never per event, so the GUI stays responsive."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.jobs import ProgressEvent
from app.core.wizard_spec import RECIPE_FILE, check_output_dir, fmt_seconds, step_cost

from ..jobs_panel import format_eta
from ..jobs_qt import JobRecord
from .common import ERROR_STYLE, OK_STYLE, message_label
from .pages import WizardPage
from .speed_memory import Measured, remember

REDRAW_MS = 200
IDLE, RUNNING, CANCELLING = "idle", "running", "cancelling"


class RunPage(WizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("5 · Run",
                         "Training runs in a separate worker process: the app stays responsive, and Cancel keeps a "
                         "checkpoint you can resume from.", parent)
        self.state = IDLE
        self.outcome = ""  # finished | failed | cancelled
        self.job: Any = None
        self.record: JobRecord | None = None
        self.model_dir: Path | None = None
        self.checkpoint: Path | None = None
        self.final_values: dict[str, float] = {}
        self.loss: tuple[list[float], list[float]] = ([], [])
        self.metric: dict[str, tuple[list[float], list[float]]] = {}
        self.events: list[ProgressEvent] = []
        self.redraws = 0
        self._dirty = False
        self.train_seconds_per_step: float | None = None  # the jobs panel's measurement of the training stage
        self._train_total: int | None = None
        self._promised: float | None = None  # the Recipe page's estimate when the run started

        self.status = message_label()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("not started")
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel (keep checkpoint)")
        self.resume_button = QPushButton("Resume")
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.resume_button)

        self.loss_plot = pg.PlotWidget()
        self.loss_plot.setTitle("training loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#2e86c1", width=2))
        self.metric_plot = pg.PlotWidget()
        self.metric_plot.setTitle("validation")
        self.metric_plot.setLabel("bottom", "step")
        self.metric_plot.showGrid(x=True, y=True, alpha=0.3)
        self.metric_curve = self.metric_plot.plot(pen=pg.mkPen("#d35400", width=2), symbol="o", symbolSize=5,
                                                  symbolBrush="#d35400")
        for plot in (self.loss_plot, self.metric_plot):
            plot.setMinimumHeight(170)
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.metric_plot)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setMinimumHeight(90)
        self.log.setPlaceholderText("worker events appear here")
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addLayout(plots, 3)
        layout.addWidget(QLabel("Log"))
        layout.addWidget(self.log, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._refresh)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.resume)
        self._update_buttons()

    # control -----------------------------------------------------------------------------------------------
    def initializePage(self) -> None:  # noqa: N802
        metric = self.wiz.spec.task.metric if self.wiz.spec.task else "metric"
        self.metric_plot.setTitle(f"validation {metric}")
        if self.state == IDLE and not self.outcome:
            self.start()

    def start(self, resume: bool = False) -> bool:
        """Start (or resume) the worker; False with a message when the output folder is unusable."""
        if self.state != IDLE:
            return False
        spec = self.wiz.spec
        spec.resume = resume
        problem = check_output_dir(spec.out_dir)
        if problem:
            self._fail(problem)
            return False
        self._promised = spec.estimate()[0]
        self._train_total = None
        if not resume:
            self.loss[0].clear()
            self.loss[1].clear()
            self.metric.clear()
            self.model_dir = None
        job = spec.to_job()
        try:  # the run's recipe: `vitascope train` reproduces it headless; it goes next to the model
            spec.save_recipe(Path(spec.out_dir) / RECIPE_FILE)
        except OSError as e:
            self._fail(f"{spec.out_dir}: cannot write the recipe ({e.strerror or e})")
            return False
        self.outcome = ""
        self.state = RUNNING
        self.status.setStyleSheet("")
        self.status.setText(("Resuming" if resume else "Starting") + f" {job.name} in a worker process…")
        self._log(f"{'resume' if resume else 'start'}: {job.kind} → {job.out_dir}")
        self.job = self.wiz.jobs.add_process_job(job, on_event=self.on_event)
        self.record = next((r for r in self.wiz.jobs.records if r.handle is self.job), None)
        self.timer.start()
        self._update_buttons()
        self.completeChanged.emit()
        return True

    def cancel(self) -> None:
        if self.state != RUNNING or self.record is None:
            return
        self.state = CANCELLING
        self.wiz.jobs.cancel(self.record)
        self.status.setText("Stopping after the current step (writing a checkpoint)…")
        self._update_buttons()

    def resume(self) -> None:
        self.start(resume=True)

    def kill(self) -> None:
        """Kill the worker outright (tests; a hung worker)."""
        if self.job is not None:
            self.job.kill()

    @property
    def running(self) -> bool:
        return self.state != IDLE

    # events (Qt thread) ------------------------------------------------------------------------------------
    def on_event(self, ev: ProgressEvent) -> None:
        self.events.append(ev)
        if ev.event == "progress" and ev.step is not None and "loss" in ev.values:
            self.loss[0].append(float(ev.step))
            self.loss[1].append(float(ev.values["loss"]))
            self._dirty = True
            self._measure_training(ev)
        elif ev.event == "metric" and ev.step is not None:
            for k, v in ev.values.items():
                xs, ys = self.metric.setdefault(k, ([], []))
                xs.append(float(ev.step))
                ys.append(float(v))
            self._dirty = True
            self._log(f"step {ev.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in ev.values.items()))
        elif ev.event == "checkpoint" and ev.path:
            self.checkpoint = Path(ev.path)
            self._log(f"checkpoint at step {ev.step}: {ev.path}")
        elif ev.event == "artifact" and ev.path:
            self.model_dir = Path(ev.path)
            self._log(ev.message or f"model written to {ev.path}")
        elif ev.event == "started":
            self._log(ev.message or "started")
            self.status.setText(ev.message or "running")
        if ev.terminal:
            self._ended(ev)

    def _measure_training(self, ev: ProgressEvent) -> None:
        """The training stage's speed as the jobs panel measures it (after warm-up): it becomes the estimate's basis
        for this task on this computer."""
        if self._train_total is None:
            self._train_total = ev.total
        sps = self.record.seconds_per_step() if self.record is not None and ev.total == self._train_total else None
        if sps is not None:
            self.train_seconds_per_step = sps

    def _remember_speed(self) -> None:
        spec = self.wiz.spec
        sps = self.train_seconds_per_step
        if sps is None or spec.task is None:
            return
        cost = step_cost(spec.model_config(), spec.recipe.batch_size or 64)
        spec.recipe.seconds_per_step, spec.recipe.measured_cost = sps, cost
        remember(spec.task.id, Measured(sps, cost, int(spec.recipe.threads), "run", time.time()))

    def _ended(self, ev: ProgressEvent) -> None:
        self._remember_speed()
        self.state = IDLE
        self.outcome = ev.event
        self.timer.stop()
        self._refresh()
        if ev.event == "finished":
            if ev.path and Path(ev.path).is_dir():
                self.model_dir = Path(ev.path)
            self.final_values = dict(ev.values)
            recipe = Path(self.wiz.spec.out_dir) / RECIPE_FILE
            if self.model_dir is not None and recipe.is_file() and not (self.model_dir / RECIPE_FILE).exists():
                shutil.copy2(recipe, self.model_dir / RECIPE_FILE)
            self.status.setStyleSheet(OK_STYLE)
            self.status.setText(f"✓ Finished: {self.model_dir}. Next: compare it with its parent.")
            self.progress.setValue(1000)
            self.progress.setFormat("finished")
        elif ev.event == "cancelled":
            self.status.setStyleSheet("")
            ckpt = self.checkpoint or (Path(ev.path) if ev.path else None)
            kept = "The checkpoint is kept: Resume continues from it." if ckpt and ckpt.is_file() else \
                "Nothing was kept: Start again to rerun."
            self.status.setText(f"Cancelled at step {ev.step}. {kept}")
            self.progress.setFormat(f"cancelled at {ev.step}/{ev.total}" if ev.total else "cancelled")
        else:
            self._fail(ev.message or "the worker failed")
            tail = list(getattr(self.job, "stderr_tail", []))[-8:]
            if tail:
                self._log("worker stderr (last lines):\n" + "\n".join(tail))
        self._log(f"{ev.event}: {ev.message or ''}".rstrip(": "))
        self._update_buttons()
        self.completeChanged.emit()

    def _fail(self, message: str) -> None:
        self.state = IDLE
        self.outcome = "failed"
        self.timer.stop()
        self.status.setStyleSheet(ERROR_STYLE)
        kept = f" The last good checkpoint is kept: {self.checkpoint}" if self.checkpoint and \
            self.checkpoint.is_file() else ""
        self.status.setText(f"Failed: {message}.{kept}".replace("..", "."))
        self.progress.setFormat("failed")
        self._update_buttons()
        self.completeChanged.emit()

    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def _refresh(self) -> None:
        """Timer tick: progress bar with ETA, and the curves if new points arrived."""
        rec = self.record
        if rec is not None and rec.fraction is not None and self.state != IDLE:
            self.progress.setValue(int(1000 * rec.fraction))
            eta = format_eta(rec.eta_s())
            self.progress.setFormat(f"step {rec.step}/{rec.total} · %p%" + (f" · {eta}" if eta else
                                                                             " · measuring speed…"))
            sps = self.train_seconds_per_step
            if sps is not None and self._promised:
                self.progress.setToolTip(f"measured {sps:.3g} s/step after warm-up; the estimate before the start "
                                         f"was {fmt_seconds(self._promised)} in all")
        if self._dirty:
            self._dirty = False
            self.redraws += 1
            self.loss_curve.setData(self.loss[0], self.loss[1])
            name = self.wiz.spec.task.metric if self.wiz.spec.task else ""
            key = name if name in self.metric else next(iter(self.metric), "")
            if key:
                self.metric_curve.setData(*self.metric[key])
                self.metric_plot.setTitle(f"validation {key}")

    def _update_buttons(self) -> None:
        resumable = self.outcome in ("cancelled", "failed") and self.checkpoint is not None and \
            self.checkpoint.is_file()
        self.start_button.setEnabled(self.state == IDLE)
        self.start_button.setText("Start again" if self.outcome else "Start")
        self.cancel_button.setEnabled(self.state == RUNNING)
        self.resume_button.setEnabled(self.state == IDLE and resumable)

    def cleanupPage(self) -> None:  # noqa: N802 (Back is disabled while running; see isComplete)
        pass

    def isComplete(self) -> bool:  # noqa: N802
        return self.state == IDLE and self.outcome == "finished" and self.model_dir is not None
