"""The model's answer beside the measurement-based second opinion: label and probabilities, the uncertain flag
with its reasons, the scope (rhythm only: MI not assessed), the out-of-distribution flag, the second opinion's
label, rhythm, findings and driving leads, and the one-line disagreement."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QGroupBox,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.gui.sdk import ProbabilityBars

from .review import Item
from .types import CLASS_TITLES, CLASSES

MEASUREMENT_ORDER = ("HR", "RR", "PR", "QRS", "QT", "QTc", "QTcF")
SHORT_TITLES = {"normal": "Normal", "abnormal_heartbeat": "Abnormal beat", "myocardial_infarction": "Acute MI",
                "history_of_mi": "History of MI"}
FLAG_STYLE = ("QLabel { background: rgba(230, 126, 34, 45); border: 1px solid rgba(230, 126, 34, 170); "
              "border-radius: 3px; padding: 3px; }")
NOTE_STYLE = ("QLabel { background: rgba(52, 152, 219, 35); border: 1px solid rgba(52, 152, 219, 150); "
              "border-radius: 3px; padding: 3px; }")
OPINION_TITLES = {**CLASS_TITLES, "other": "Other finding (outside the four classes)"}


def _label(text: str = "", wrap: bool = True) -> QLabel:
    lab = QLabel(text)
    lab.setWordWrap(wrap)
    lab.setTextFormat(Qt.TextFormat.RichText)
    lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    lab.setMinimumWidth(60)  # wrapped text may get narrow; the two boxes then still fit side by side
    return lab


def fmt_measurements(meas: dict[str, float], every: bool = False) -> str:
    """The interval measurements (HR, PR, QRS, QT, QTc…); `every` adds the others (ST levels, counts…)."""
    parts = [f"{k} {meas[k]:.0f} {'bpm' if k == 'HR' else 'ms'}" for k in MEASUREMENT_ORDER if k in meas]
    if every:
        parts += [f"{k} {v:.4g}" for k, v in meas.items() if k not in MEASUREMENT_ORDER]
    return " · ".join(parts)


class ResultPanel(QWidget):
    """Two boxes side by side ("Model", "Second opinion") and the disagreement line under both."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result_label = _label("—", wrap=True)
        font = self.result_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.result_label.setFont(font)
        self.result_label.setAccessibleName("Model answer")
        self.uncertain_label = _label()
        self.uncertain_label.setStyleSheet(FLAG_STYLE)
        self.uncertain_label.setAccessibleName("Uncertain flag")
        self.scope_label = _label()
        self.scope_label.setStyleSheet(NOTE_STYLE)
        self.scope_label.setAccessibleName("Scope")
        self.ood_label = _label()
        self.ood_label.setStyleSheet(FLAG_STYLE)
        self.ood_label.setAccessibleName("Out-of-distribution flag")
        self.probability_bars = ProbabilityBars(CLASSES, titles=SHORT_TITLES, tooltips=CLASS_TITLES, markers=False,
                                                compact=True)
        self.bars = self.probability_bars.bars
        self.measure_label = _label("Measurements: —")
        self.model_label = _label("")
        self.model_label.setStyleSheet("QLabel { color: palette(placeholder-text); }")
        model_box = QGroupBox("Model")
        mv = QVBoxLayout(model_box)
        mv.setSpacing(3)
        mv.addWidget(self.result_label)
        for w in (self.uncertain_label, self.scope_label, self.ood_label):
            w.setVisible(False)
            mv.addWidget(w)
        mv.addWidget(self.probability_bars)
        mv.addWidget(self.measure_label)
        mv.addWidget(self.model_label)
        mv.addStretch(1)

        self.opinion_title = _label("—")
        bold = self.opinion_title.font()
        bold.setBold(True)
        self.opinion_title.setFont(bold)
        self.opinion_title.setAccessibleName("Second opinion")
        self.opinion_rhythm = _label()
        self.opinion_findings = _label()
        self.opinion_leads = _label()
        self.opinion_measure = _label()
        opinion_box = QGroupBox("Second opinion")
        opinion_box.setToolTip("A measurement-based read of the waveform (rhythm, ST and Q-wave criteria, "
                               "intervals), independent of the model")
        ov = QVBoxLayout(opinion_box)
        ov.setSpacing(3)
        for w in (self.opinion_title, self.opinion_rhythm, self.opinion_findings, self.opinion_leads,
                  self.opinion_measure):
            ov.addWidget(w)
        ov.addStretch(1)
        self.opinion_box = opinion_box

        self.disagreement_label = _label()
        self.disagreement_label.setStyleSheet(FLAG_STYLE)
        self.disagreement_label.setAccessibleName("Disagreement")
        self.disagreement_label.setVisible(False)
        self.model_box = model_box
        row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        row.addWidget(model_box, 1)
        row.addWidget(opinion_box, 1)
        self._row = row
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.disagreement_label)
        layout.addLayout(row)

    def wide_width(self) -> int:
        """The width from which the two boxes sit side by side (below it, the second opinion goes under)."""
        return 2 * max(self.model_box.minimumSizeHint().width(), self.opinion_box.minimumSizeHint().width(),
                       self.fontMetrics().horizontalAdvance("m") * 15) + self._row.spacing()

    def set_side_by_side(self, on: bool) -> None:
        self._row.setDirection(QBoxLayout.Direction.LeftToRight if on else QBoxLayout.Direction.TopToBottom)

    @property
    def side_by_side(self) -> bool:
        return self._row.direction() == QBoxLayout.Direction.LeftToRight

    def show_item(self, it: Item | None) -> None:
        self._show_model(it)
        self._show_opinion(it)
        text = (it.disagreement or "") if it is not None and it.label is not None else ""
        self.disagreement_label.setText(f"<b>Model and second opinion disagree:</b> {escape(text)}")
        self.disagreement_label.setVisible(bool(text))

    def _show_model(self, it: Item | None) -> None:
        for w in (self.uncertain_label, self.scope_label, self.ood_label):
            w.setVisible(False)
        if it is None or it.label is None:
            self.result_label.setText("(not screened)" if it is not None else "—")
            self.probability_bars.clear()
            self.measure_label.setText("Measurements: —")
            self.model_label.setText("")
            return
        p = it.probabilities.get(it.label, 0.0)
        title = CLASS_TITLES.get(it.label, it.label)
        if it.scope == "rhythm-only" and it.label == "normal":
            title = "Normal rhythm"
        self.result_label.setText(f"{escape(title)} ({p:.0%})")
        top = max(it.probabilities, key=it.probabilities.get) if it.probabilities else it.label
        if top != it.label:  # the answer is not the network's top class (e.g. gated or overruled by criteria)
            self.result_label.setText(f"{escape(title)}<br><span style='font-size:small; font-weight:normal'>"
                                      f"network's top class: {escape(CLASS_TITLES.get(top, top))} "
                                      f"({it.probabilities[top]:.0%})</span>")
        if it.uncertain:
            reasons = "".join(f"<br>• {escape(r)}" for r in it.reasons) or "<br>• no reason given"
            self.uncertain_label.setText(f"<b>⚠ Uncertain — review before use</b>{reasons}")
            self.uncertain_label.setVisible(True)
        if it.scope == "rhythm-only":
            self.scope_label.setText("<b>Rhythm only: MI not assessed</b> (too few leads for acute or old MI)")
            self.scope_label.setVisible(True)
        if it.ood_score is not None and any("unlike" in r.lower() or "ood" in r.lower() for r in it.reasons):
            self.ood_label.setText(f"<b>Unlike the training data</b> (OOD score {it.ood_score:.2f})")
            self.ood_label.setVisible(True)
        self.probability_bars.set_probabilities({c: it.probabilities.get(c, 0.0) for c in CLASSES})
        self.measure_label.setText("Measurements: " + (fmt_measurements(it.measurements) if it.measurements
                                                       else "— (image input)"))
        self.measure_label.setToolTip(fmt_measurements(it.measurements, every=True))
        sha = (it.model_sha256 or "")[:12]
        ood = f" · OOD {it.ood_score:.2f}" if it.ood_score is not None else ""
        self.model_label.setText(escape(f"{it.model_id} (sha256 {sha}…){ood} · screened "
                                        f"{(it.screened_at or '')[:16].replace('T', ' ')} UTC"))

    def _show_opinion(self, it: Item | None) -> None:
        op = it.opinion if it is not None else None
        extra = (self.opinion_rhythm, self.opinion_findings, self.opinion_leads, self.opinion_measure)
        if op is None:
            if it is None or it.label is None:
                note = "—"
            elif it.kind == "image" or it.kind == "dicom-image":
                note = "Not available: an image has no waveform to measure."
            else:
                note = "Not available for this result."
            self.opinion_title.setText(f"<span style='font-weight:normal'>{note}</span>")
            for w in extra:
                w.setVisible(False)
            return
        title = OPINION_TITLES.get(op.label or "", op.label or "Not assessed")
        self.opinion_title.setText(escape(title))
        self.opinion_rhythm.setText(f"Rhythm: {escape(op.rhythm)}" if op.rhythm else "")
        self.opinion_findings.setText("".join(f"• {escape(f)}<br>" for f in op.findings).removesuffix("<br>"))
        self.opinion_leads.setText(f"Driving leads: <b>{escape(', '.join(op.leads))}</b>" if op.leads else "")
        not_assessed = [CLASS_TITLES[c] for c in CLASSES if c not in op.assessed]
        meas = fmt_measurements(op.measurements)
        self.opinion_measure.setToolTip(fmt_measurements(op.measurements, every=True))
        bits = ([f"Measured: {escape(meas)}"] if meas else []) + (
            [f"Not assessed: {escape(', '.join(not_assessed))}"] if not_assessed else [])
        self.opinion_measure.setText("<br>".join(bits))
        for w in extra:
            w.setVisible(bool(w.text()))


class ResultScroll(QScrollArea):
    """Scrolls the result panel vertically only; narrower than the two boxes side by side, it stacks them."""

    def __init__(self, panel: ResultPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.setWidget(panel)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumHeight(90)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        self.panel.set_side_by_side(self.viewport().width() >= self.panel.wide_width())
        super().resizeEvent(event)
