"""Data types shared by the ECG plug-in's modules: a waveform record, a readable input, a screening result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

CLASSES: tuple[str, ...] = ("normal", "abnormal_heartbeat", "myocardial_infarction", "history_of_mi")
CLASS_TITLES: dict[str, str] = {
    "normal": "Normal",
    "abnormal_heartbeat": "Abnormal heartbeat",
    "myocardial_infarction": "Myocardial infarction (acute)",
    "history_of_mi": "History of MI",
    "other": "Other / not one of the four classes",
}
OTHER = "other"  # a label for findings outside the four classes (blocks, paced rhythms, ...): never forced into one
STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@dataclass
class EcgRecord:
    """A multi-lead waveform: `signals` is (n_leads, n_samples) float32 in mV, sampled at `fs` Hz."""

    signals: np.ndarray
    fs: float
    leads: tuple[str, ...]
    label: str | None = None            # one of CLASSES when known (simulated records)
    meta: dict[str, Any] = field(default_factory=dict)  # patient/study fields, simulator parameters, annotations

    @property
    def duration_s(self) -> float:
        return self.signals.shape[1] / float(self.fs)


@dataclass
class EcgInput:
    """One screenable item read from disk: an image (H, W, 3) uint8 RGB, and the waveform when the file had one
    (DICOM waveform, WFDB) — then `image` is its rendering. `source` names the file (and the group/record inside)."""

    source: str
    image: np.ndarray
    record: EcgRecord | None = None
    meta: dict[str, str] = field(default_factory=dict)  # PatientID, PatientName, StudyDate, ... where present
    kind: str = "image"  # "image" | "dicom-waveform" | "dicom-image" | "wfdb"


@dataclass
class SecondOpinion:
    """A measurement-based read of a waveform, independent of the model: rhythm, ST / Q-wave criteria per lead.
    `label` is one of CLASSES, "other" (a finding outside the four classes, e.g. a block or a paced rhythm) or None
    when nothing could be assessed; `findings` are one-line statements a clinician can check, `leads` drive them."""

    label: str | None
    findings: list[str] = field(default_factory=list)
    leads: list[str] = field(default_factory=list)
    rhythm: str = ""                                 # e.g. "sinus rhythm 72 bpm", "irregular (AF?)"
    measurements: dict[str, float] = field(default_factory=dict)
    assessed: tuple[str, ...] = CLASSES              # the classes these leads allow to be assessed

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "findings": list(self.findings), "leads": list(self.leads),
                "rhythm": self.rhythm, "measurements": {k: round(float(v), 3) for k, v in self.measurements.items()},
                "assessed": list(self.assessed)}


@dataclass
class ScreenResult:
    """The model's read of one input."""

    source: str
    label: str
    probabilities: dict[str, float]
    model_id: str
    model_sha256: str
    heatmap: np.ndarray | None = None      # (h, w) float32 in [0, 1], attention rollout over the model input
    measurements: dict[str, float] = field(default_factory=dict)  # HR, PR, QRS, QT, QTc when a waveform exists
    uncertain: bool = False                # the answer should not be trusted without review (see `reasons`)
    reasons: list[str] = field(default_factory=list)   # one line each: why uncertain / what was not assessed
    ood_score: float | None = None         # how unlike the training data the input is (higher = less alike)
    scope: str = "12-lead"                 # "12-lead" | "rhythm-only" (too few leads to assess MI)
    second_opinion: SecondOpinion | None = None         # measurement-based read of a waveform
    disagreement: str = ""                 # where the model and the second opinion disagree, in one line
