"""Wizard page 4: the recipe — train / fine-tune, distillation, depth reparameterization, quantization, a time
budget and an estimate of the time to finish: from the speed measured on this computer (a few steps in a worker, or
the last run of the task, both timed after warm-up like the jobs panel's ETA), else — roughly — from the shipped
model's training history."""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.jobs import ProgressEvent
from app.core.wizard_spec import fmt_seconds, step_cost

from ..speed import SpeedMeter
from .common import MUTED_STYLE, combo, form_box, int_spin, message_label, on_edit, show_problems
from .pages import WizardPage
from .speed_memory import Measured, recall, remember

MODES = (("train", "Train from scratch"), ("finetune", "Fine-tune the zoo model"),
         ("none", "No training: compress the zoo model"))
DISTILL = (("kd", "KD (soft targets)"), ("nkd", "NKD (normalized KD)"), ("uskd", "USKD (self-KD)"),
           ("logits", "Sparse teacher logits (TinyViT)"))
QUANT = (("", "none (fp32)"), ("int8", "int8 (deployed, ONNX QDQ)"), ("w6a6-repq", "W6A6 RepQ (evaluated)"),
         ("w4a4-repq", "W4A4 RepQ (evaluated)"), ("w6a6-sulq", "W6A6 SULQ (evaluated)"),
         ("w4a4-sulq", "W4A4 SULQ (evaluated)"))
MEASURE_STEPS = 16
MEASURE_WARMUP = 4  # steps timed but not counted: imports, allocation and caches make them slow
ROUGH = ("rough: the shipped model's training history, from another computer; it can be several times off here. "
         "<b>Measure speed</b> times this computer")


class RecipePage(WizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("4 · Recipe",
                         "How to train and compress, and where the results go. The estimate updates as you edit.",
                         parent)
        self._loading = False
        self.measure_job: Any = None
        self.basis = ""  # where a measured speed came from (shown with the estimate)
        self._measured_here = False

        self.mode = combo(MODES)
        self.steps = int_spin(1, 10_000_000, 100)
        self.batch = int_spin(1, 4096)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.threads = int_spin(1, 64)
        self.budget = int_spin(0, 100_000)
        self.budget.setSuffix(" min")
        self.budget.setSpecialValueText("no limit")
        train_box = form_box("Training", ("Mode", self.mode), ("Steps", self.steps), ("Batch size", self.batch),
                             ("Learning rate", self.lr), ("Torch threads", self.threads), ("Time budget", self.budget))

        self.depth = QComboBox()
        self.distill = combo(DISTILL)
        self.distill_steps = int_spin(10, 1_000_000, 50)
        self.quant = combo(QUANT)
        hint = QLabel("A smaller student depth merges a branched student, distilled from the model, into fewer "
                      "blocks (depth reparameterization). int8 is what the app deploys (ONNX QDQ); W6A6/W4A4 "
                      "are evaluated in fake-quant and recorded on the card.")
        hint.setWordWrap(True)
        hint.setStyleSheet(MUTED_STYLE)
        comp_box = form_box("Compression", ("Student depth", self.depth), ("Distillation", self.distill),
                            ("Distillation steps", self.distill_steps), ("Quantization", self.quant), hint)

        self.model_id = QLineEdit()
        self.out_dir = QLineEdit()
        self.browse = QPushButton("Browse…")
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(self.browse)
        self.save_recipe = QPushButton("Save recipe TOML…")
        recipe_row = QHBoxLayout()
        recipe_row.addWidget(QLabel("The same run headless: vitascope train RECIPE.toml [--nproc N]"), 1)
        recipe_row.addWidget(self.save_recipe)
        out_box = form_box("Result", ("Model id", self.model_id), ("Output folder", out_row), ("", recipe_row))

        self.eta = QLabel()
        self.eta.setWordWrap(True)
        self.measure = QPushButton(f"Measure speed ({MEASURE_STEPS} steps)")
        eta_row = QHBoxLayout()
        eta_row.addWidget(self.eta, 1)
        eta_row.addWidget(self.measure)
        self.problems = message_label()

        cols = QHBoxLayout()
        cols.addWidget(train_box, 1)
        cols.addWidget(comp_box, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(cols)
        layout.addWidget(out_box)
        layout.addLayout(eta_row)
        layout.addWidget(self.problems)
        layout.addStretch(1)

        on_edit(self._changed, self.steps, self.batch, self.threads, self.budget, self.distill_steps, self.lr,
                self.mode, self.depth, self.distill, self.quant, self.model_id, self.out_dir)
        self.browse.clicked.connect(self._browse)
        self.save_recipe.clicked.connect(self._save_recipe)
        self.measure.clicked.connect(self.measure_speed)

    def initializePage(self) -> None:  # noqa: N802
        spec = self.wiz.spec
        r = spec.recipe
        self._loading = True
        zoo = spec.start.kind == "zoo"
        for i, (key, _) in enumerate(MODES):
            item = self.mode.model().item(i)
            item.setEnabled(key == "train" if not zoo else (key != "train" and
                                                           (spec.start.has_checkpoint or key == "none")))
        self.mode.setCurrentIndex([k for k, _ in MODES].index(r.mode))
        self.steps.setValue(r.steps)
        self.batch.setValue(r.batch_size)
        self.lr.setValue(r.lr)
        self.threads.setValue(r.threads)
        self.budget.setValue(int(r.time_budget_s // 60))
        depth = int(spec.model_config()["depth"])
        self.depth.clear()
        self.depth.addItem(f"keep all {depth} blocks", 0)
        for d in range(depth - 1, 0, -1):
            if depth % d == 0:
                self.depth.addItem(f"{depth} → {d} blocks", d)
        self.depth.setCurrentIndex(max(0, self.depth.findData(r.reparam_depth)))
        self.distill.setCurrentIndex(max(0, self.distill.findData(r.distill or "kd")))
        self.distill_steps.setValue(r.distill_steps)
        self.quant.setCurrentIndex(max(0, self.quant.findData(r.quant)))
        self.model_id.setText(spec.model_id)
        self.out_dir.setText(spec.out_dir)
        self._loading = False
        self._changed()

    def _recall_speed(self) -> None:
        """Without a measurement on this page, use the speed last measured for this task on this computer with
        the same number of threads (and stop using it when the threads change)."""
        spec = self.wiz.spec
        r = spec.recipe
        if self._measured_here or spec.task is None:
            return
        m = recall(spec.task.id)
        if m is not None and m.threads == r.threads:
            r.seconds_per_step, r.measured_cost = m.seconds_per_step, m.cost
            self.basis = m.describe()
        elif self.basis:
            r.seconds_per_step, r.measured_cost = 0.0, 0.0
            self.basis = ""

    def _changed(self, *_: object) -> None:
        if self._loading:
            return
        spec = self.wiz.spec
        r = spec.recipe
        r.mode = self.mode.currentData() or "train"
        r.steps, r.batch_size, r.lr = self.steps.value(), self.batch.value(), self.lr.value()
        r.threads = self.threads.value()
        r.time_budget_s = 60.0 * self.budget.value()
        r.reparam_depth = int(self.depth.currentData() or 0)
        r.distill = (self.distill.currentData() or "kd") if r.reparam_depth else ""
        r.distill_steps = self.distill_steps.value()
        r.quant = self.quant.currentData() or ""
        spec.model_id = self.model_id.text().strip()
        spec.out_dir = self.out_dir.text().strip()
        self._recall_speed()
        trains = spec.trains
        for w in (self.steps, self.batch, self.lr, self.budget, self.measure):
            w.setEnabled(trains)
        self.distill.setEnabled(bool(r.reparam_depth))
        self.distill_steps.setEnabled(bool(r.reparam_depth))
        self._update_eta()
        show_problems(self.problems, spec.problems())
        self.completeChanged.emit()

    def _update_eta(self) -> None:
        spec = self.wiz.spec
        seconds, basis = spec.estimate()
        rough = "history" in basis
        if basis == "measured speed" and self.basis:
            basis = self.basis
        steps = spec.effective_steps()
        cut = f" · the budget allows {steps} of {spec.recipe.steps} steps" if steps < spec.recipe.steps else ""
        if rough:
            self.eta.setText(f"Estimated time to finish: <b>about {fmt_seconds(seconds)}</b> — {ROUGH}{cut}")
        else:
            self.eta.setText(f"Estimated time to finish: <b>{fmt_seconds(seconds)}</b> ({basis}){cut}")
        if spec.recipe.time_budget_s and seconds and seconds > spec.recipe.time_budget_s:
            self.eta.setText(self.eta.text() + " — over the time budget")

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder", self.out_dir.text())
        if path:
            self.out_dir.setText(path)

    def _save_recipe(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", f"{self.wiz.spec.model_id}.toml",
                                              "Recipe (*.toml)")
        if path:
            self.wiz.spec.save_recipe(path)

    # speed measurement: the same spec, a few steps, in a worker process ----------------------------------
    def measure_speed(self) -> None:
        spec = copy.deepcopy(self.wiz.spec)
        spec.recipe.time_budget_s = 0
        spec.recipe.steps = MEASURE_STEPS
        spec.recipe.reparam_depth, spec.recipe.quant, spec.recipe.mode = 0, "", "train"
        spec.out_dir = self._measure_dir = tempfile.mkdtemp(prefix="vitascope-measure-")
        job = spec.to_job()
        params = dict(job.params.get("train", job.params))
        params.pop("export", None)
        params.update(log_every=1, eval_every=0, checkpoint_every=0)
        if "train" in job.params:
            job.params = {**job.params, "train": params}
            job.params.pop("compress", None)
        else:
            job.params = params
        job.name = "wizard: measure speed"
        self._meter = SpeedMeter(warmup_steps=MEASURE_WARMUP, warmup_s=0.0)
        self._measured_cost = step_cost(self.wiz.spec.model_config(), self.wiz.spec.recipe.batch_size or 64)
        self.measure.setEnabled(False)
        self.eta.setStyleSheet(MUTED_STYLE)
        self.eta.setText("measuring the speed in a worker process…")
        self.measure_job = self.wiz.jobs.add_process_job(job, on_event=self._measure_event)

    def _measure_event(self, ev: ProgressEvent) -> None:
        if ev.event == "progress" and ev.step is not None:
            self._meter.add(ev.step, ev.time)  # the worker's clock: no delivery jitter
        if not ev.terminal:
            return
        self.measure.setEnabled(True)
        self.eta.setStyleSheet("")
        spec = self.wiz.spec
        r = spec.recipe
        sps = self._meter.seconds_per_step()
        if sps is not None:
            r.seconds_per_step = max(1e-4, sps)
            r.measured_cost = self._measured_cost
            m = Measured(r.seconds_per_step, self._measured_cost, int(r.threads), "measurement", time.time())
            self.basis = m.describe()
            self._measured_here = True
            if spec.task is not None:
                remember(spec.task.id, m)
        self._update_eta()
        if ev.event == "failed":
            self.eta.setText(self.eta.text() + f"<br>measurement failed: {ev.message}")
        shutil.rmtree(self._measure_dir, ignore_errors=True)

    def isComplete(self) -> bool:  # noqa: N802
        return not self.wiz.spec.problems()
