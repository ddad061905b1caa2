"""A user's labelled ECG images — one sub-folder per class — as model inputs with fixed, leakage-free folds:
near-duplicate scans grouped, groups dealt to folds by content hash. The path a hospital uses to fine-tune."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.card import sha256_file
from app.core.errors import BadInput
from app.core.folds import near_duplicate_groups, stratified_group_folds
from app.core.io.images import IMAGE_SUFFIXES, read_image

from .preprocess import DEFAULT_SIZE, letterbox_gray, normalise
from .types import CLASSES

# folder names accepted for each class (lower case, spaces/dashes as underscores)
ALIASES: dict[str, str] = {
    "normal": "normal", "norm": "normal",
    "abnormal_heartbeat": "abnormal_heartbeat", "abnormal": "abnormal_heartbeat", "hb": "abnormal_heartbeat",
    "arrhythmia": "abnormal_heartbeat",
    "myocardial_infarction": "myocardial_infarction", "mi": "myocardial_infarction",
    "acute_mi": "myocardial_infarction", "stemi": "myocardial_infarction",
    "history_of_mi": "history_of_mi", "history_mi": "history_of_mi", "pmi": "history_of_mi", "old_mi": "history_of_mi",
    "prior_mi": "history_of_mi",
}


@dataclass
class LabelledEcgs:
    """Letterboxed gray images (N, H, W) uint8, class indices into CLASSES, file paths (relative to the root) and
    their sha256, near-duplicate group ids and folds."""

    x: np.ndarray
    y: np.ndarray
    files: list[str]
    sha256: list[str]
    groups: np.ndarray
    folds: np.ndarray

    def inputs(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(n, 1, H, W) float32 model inputs."""
        x = self.x if idx is None else self.x[idx]
        return normalise(x)[:, None]


def class_of(folder: str) -> str | None:
    return ALIASES.get(folder.strip().lower().replace(" ", "_").replace("-", "_"))


def load_labelled(root: str | Path, size: tuple[int, int] = DEFAULT_SIZE, k: int = 5, seed: int = 0
                  ) -> LabelledEcgs:
    """Read every image under root/<class>/ (class names per ALIASES); unknown folders are an error, so a typo
    cannot silently drop a class."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder (expected one sub-folder of ECG images per class)")
    xs, ys, files, hashes = [], [], [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        label = class_of(sub.name)
        if label is None:
            raise BadInput(f"{sub}: unknown class folder; use one of {', '.join(CLASSES)}")
        for f in sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
            xs.append(letterbox_gray(read_image(f, color=True), size))
            ys.append(CLASSES.index(label))
            files.append(str(f.relative_to(root)))
            hashes.append(sha256_file(f))
    if len(set(ys)) < 2:
        raise BadInput(f"{root}: need ECG images of at least two classes, found {len(set(ys))}")
    x = np.stack(xs)
    y = np.asarray(ys, np.int64)
    groups = near_duplicate_groups(x)
    folds = stratified_group_folds(y, groups, hashes, k=k, seed=seed)
    return LabelledEcgs(x, y, files, hashes, groups, folds)


def labelled_data(seed: int = 0, path: str = "", size: tuple[int, int] | list[int] = DEFAULT_SIZE, k: int = 5
                  ) -> dict[str, object]:
    """Job data entry `plugins.ecg.labelled:labelled_data`: {x (N, 1, H, W) float32, y, folds, files, sha256}."""
    d = load_labelled(path, (int(size[0]), int(size[1])), k=k, seed=seed)
    return {"x": d.inputs(), "y": d.y, "folds": d.folds, "files": d.files, "sha256": d.sha256}


def folder_dataset(seed: int = 0, path: str = "", val_fraction: float = 0.2,
                   size: tuple[int, int] | list[int] = DEFAULT_SIZE) -> tuple[np.ndarray, ...]:
    """Wizard data entry for "your own labelled ECG images": (x_train, y_train, x_val, y_val) in the model's input
    format, validation = the fold(s) of the leakage-free fold assignment nearest `val_fraction` (at least one)."""
    k = max(2, int(round(1.0 / max(val_fraction, 1e-3))))
    d = load_labelled(path, (int(size[0]), int(size[1])), k=k, seed=seed)
    val = d.folds == 0
    return d.inputs(np.nonzero(~val)[0]), d.y[~val], d.inputs(np.nonzero(val)[0]), d.y[val]
