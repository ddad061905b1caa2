"""Wizard page 6: the new model against its parent on held-out data (metric, ORT latency with 2 threads, size,
params), with predicted-vs-true for regression or per-class accuracy for classification. Runs on a thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.core.errors import VitascopeError
from app.core.wizard_clip_eval import result_rows
from app.core.wizard_eval import EvalRow, compare

from .common import ERROR_STYLE, MUTED_STYLE, message_label
from .pages import WizardPage

COLUMNS = ("Model", "Role", "Metric", "Latency (ms, 2 threads)", "Size", "Params", "Held-out samples")
COLOURS = {"new": "#2e86c1", "parent": "#7f8c8d", "teacher": "#7f8c8d"}


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MB" if n >= 2**20 else f"{n / 1024:.0f} kB"


class EvaluatePage(WizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("6 · Evaluate",
                         "The new model and its parent on the same held-out data, run with onnxruntime as the app "
                         "runs them.", parent)
        self.rows: list[EvalRow] = []
        self.error = ""
        self._busy = False
        self._for: Path | None = None
        self.status = message_label()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setMaximumHeight(self.table.horizontalHeader().sizeHint().height() + 2 * 30 + 4)
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend(offset=(10, 10))
        self.where = message_label()
        self.where.setStyleSheet(MUTED_STYLE)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        layout.addWidget(self.where)
        layout.addWidget(self.plot, 1)

    def parent_folder(self) -> tuple[Path | None, str]:
        """The zoo model the run started from, else the task's other installed model as the reference."""
        spec = self.wiz.spec
        if spec.start.kind == "zoo" and spec.start.model_dir:
            return Path(spec.start.model_dir), "parent"
        for card in self.wiz.zoo.cards(spec.task.id):
            if card.id != spec.model_id:
                return self.wiz.zoo.entry(card.id).folder, "reference"
        return None, ""

    def initializePage(self) -> None:  # noqa: N802
        new = self.wiz.run_page.model_dir
        if new is None or (self._for == new and (self.rows or self._busy)):
            return
        self.start(new)

    def start(self, new: Path) -> None:
        spec = self.wiz.spec
        if spec.page_job:  # its job scored the new model and its teacher already: read them off the card
            self._for, self.parent_role, self.rows, self.error = new, "teacher", [], ""
            try:
                self._done(result_rows(new))
            except VitascopeError as e:
                self._failed(str(e))
            return
        parent, self.parent_role = self.parent_folder()
        task, params = spec.task, spec.to_job().params
        self._for, self._busy, self.rows, self.error = new, True, [], ""
        self.status.setStyleSheet("")
        self.status.setText(f"Evaluating {new.name}" + (f" and {parent.name}" if parent else "") + " …")

        def job(cancel: Any, emit: Any) -> list[EvalRow]:
            return compare(task, params, new, parent)

        self.wiz.jobs.run_thread_job("wizard: evaluate", job, on_result=self._done, on_error=self._failed)
        self.completeChanged.emit()

    def _done(self, rows: list[EvalRow]) -> None:
        self._busy = False
        self.rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            role = r.role if r.role == "new" else self.parent_role
            cells = (r.model_id, role, f"{r.metric} {r.value:.4g}", f"{r.latency_ms:.3g}", fmt_bytes(r.bytes),
                     f"{r.params:,}", str(r.n))
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.where.setText("Data: " + rows[0].dataset if rows else "")
        if len(rows) > 1:
            new, old = rows[0], rows[1]
            better = new.value <= old.value if new.metric == "mae" else new.value >= old.value  # mae: lower
            self.status.setText(f"{new.metric}: {new.value:.4g} vs {old.value:.4g} ({'better' if better else 'worse'}"
                                f" than the {self.parent_role}); latency {new.latency_ms:.3g} vs "
                                f"{old.latency_ms:.3g} ms; {new.params:,} vs {old.params:,} params")
        else:
            self.status.setText(f"{rows[0].metric}: {rows[0].value:.4g} (no parent model to compare with)")
        self._plot(rows)
        self.completeChanged.emit()

    def _plot(self, rows: list[EvalRow]) -> None:
        self.plot.clear()
        if rows and rows[0].pred is not None:
            self.plot.setTitle("predicted vs true (held-out)")
            self.plot.setLabel("bottom", "true")
            self.plot.setLabel("left", "predicted")
            lo = min(float(np.min(r.target)) for r in rows if r.target is not None)
            hi = max(float(np.max(r.target)) for r in rows if r.target is not None)
            self.plot.plot([lo, hi], [lo, hi], pen=pg.mkPen("#999", style=pg.QtCore.Qt.PenStyle.DashLine))
            for r in rows:
                self.plot.plot(r.target, r.pred, pen=None, symbol="o", symbolSize=4,
                               symbolBrush=COLOURS.get(r.role, "#999"), name=r.model_id)
            return
        if not any(r.per_class for r in rows):  # a headline number only (retrieval): nothing per class to plot
            self.plot.setTitle("")
            return
        recall = bool(self.wiz.spec.page_job)
        self.plot.setTitle("recall at k on the validation captions (%)" if recall else "accuracy per class (held-out)")
        self.plot.setLabel("left", "recall (%)" if recall else "accuracy")
        names = list(rows[0].per_class) if rows else []
        width = 0.8 / max(1, len(rows))
        for k, r in enumerate(rows):
            xs = np.arange(len(names)) + (k - (len(rows) - 1) / 2) * width
            ys = [r.per_class.get(n, 0.0) for n in names]
            self.plot.addItem(pg.BarGraphItem(x=xs, height=ys, width=width, brush=COLOURS.get(r.role, "#999")))
            self.plot.plot([], [], pen=pg.mkPen(COLOURS.get(r.role, "#999"), width=6), name=r.model_id)
        self.plot.getAxis("bottom").setTicks([list(enumerate(names))])
        top = max((v for r in rows for v in r.per_class.values()), default=1.0)
        self.plot.setYRange(0, 1.3 * max(10.0, top) if recall else 1.3)  # room for the legend above the bars

    def _failed(self, message: str) -> None:
        self._busy = False
        self.error = message
        self.status.setStyleSheet(ERROR_STYLE)
        self.status.setText(f"Evaluation failed: {message}")
        self.completeChanged.emit()

    @property
    def busy(self) -> bool:
        return self._busy

    def isComplete(self) -> bool:  # noqa: N802
        return not self._busy and (bool(self.rows) or bool(self.error))
