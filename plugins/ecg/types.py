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
}
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
class ScreenResult:
    """The model's read of one input."""

    source: str
    label: str
    probabilities: dict[str, float]
    model_id: str
    model_sha256: str
    heatmap: np.ndarray | None = None      # (h, w) float32 in [0, 1], attention rollout over the model input
    measurements: dict[str, float] = field(default_factory=dict)  # HR, PR, QRS, QT, QTc when a waveform exists
