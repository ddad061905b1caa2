"""Wizard data, Qt- and torch-free: content hashes, a split that keeps identical content on one side, the leakage
check, summaries with thumbnails, and data entries for a folder of labelled images or an HDF5 stack."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadInput
from .problems import problem as problem_of


class DataLeakage(BadInput):
    """Identical content (same hash) on both sides of a train/test split."""


def array_hashes(x: np.ndarray) -> list[str]:
    """sha256 of each sample's bytes (dtype and shape included), for arrays of samples along axis 0."""
    x = np.ascontiguousarray(x)
    head = f"{x.dtype.str}{x.shape[1:]}".encode()
    return [hashlib.sha256(head + x[i].tobytes()).hexdigest() for i in range(len(x))]


def find_leaks(train: list[str], test: list[str]) -> list[str]:
    """Hashes present in both lists (sorted)."""
    return sorted(set(train) & set(test))


def check_no_leakage(train: list[str], test: list[str], names_train: list[str] | None = None,
                     names_test: list[str] | None = None) -> None:
    """Raise DataLeakage naming an example when identical content straddles train and test."""
    leaks = find_leaks(train, test)
    if not leaks:
        return
    h = leaks[0]
    where = ""
    if names_train is not None and names_test is not None:
        where = f": e.g. {names_train[train.index(h)]} (train) = {names_test[test.index(h)]} (test)"
    raise DataLeakage(f"{len(leaks)} identical item(s) appear in both the training and the test split{where}; "
                      "remove the duplicates or split by content hash")


def split_by_hash(hashes: list[str], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train_idx, val_idx): each distinct content hash goes to one side as a whole, chosen by a
    seeded hash of the content, so duplicates never straddle the split and adding files does not reshuffle it."""
    if not 0.0 <= val_fraction < 1.0:
        raise BadInput(f"validation fraction must be in [0, 1), got {val_fraction}")
    cut = int(val_fraction * 2**32)
    side = {}
    for h in set(hashes):
        key = int(hashlib.sha256(f"{seed}:{h}".encode()).hexdigest()[:8], 16)
        side[h] = key < cut
    val = np.array([i for i, h in enumerate(hashes) if side[h]], dtype=np.int64)
    train = np.array([i for i, h in enumerate(hashes) if not side[h]], dtype=np.int64)
    return train, val


# summaries -------------------------------------------------------------------------------------------------
@dataclass
class DataSummary:
    """What the Data page shows: counts, class balance or target range, thumbnails and leaks."""

    n_train: int
    n_val: int
    shape: tuple[int, ...]
    classes: dict[str, int] = field(default_factory=dict)  # label → training count (classification)
    target_range: tuple[float, float] | None = None  # (min, max) of the targets (regression)
    thumbnails: list[np.ndarray] = field(default_factory=list)  # (H, W, 3) uint8
    captions: list[str] = field(default_factory=list)
    leaks: int = 0

    def text(self) -> str:
        total = self.n_train + self.n_val
        share = f"{100 * self.n_val / total:.0f} %" if total else "–"
        parts = [f"{self.n_train} training + {self.n_val} validation samples ({share} held back), "
                 f"input {'×'.join(map(str, self.shape))}"]
        if self.classes:
            parts.append("classes: " + ", ".join(f"{k} {v}" for k, v in self.classes.items()))
        if self.target_range is not None:
            parts.append(f"targets {self.target_range[0]:.3g} … {self.target_range[1]:.3g}")
        parts.append("no identical samples across the split" if not self.leaks
                     else f"{self.leaks} identical sample(s) straddle the split")
        return "\n".join(parts)


def to_thumbnail(img: np.ndarray) -> np.ndarray:
    """One CHW (or HW) float sample → (H, W, 3) uint8, min-max scaled per image (first 3 channels)."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    a = a[:3] if a.shape[0] >= 3 else np.repeat(a[:1], 3, axis=0)
    lo, hi = float(a.min()), float(a.max())
    a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.ascontiguousarray((a.transpose(1, 2, 0) * 255).round().astype(np.uint8))


def summarize(data: tuple[np.ndarray, ...], labels: list[str] | None = None, problem: str = "classification",
              n_thumbs: int = 8) -> DataSummary:
    """Counts, balance/range, leaks and a few thumbnails of (x_train, y_train, x_val, y_val)."""
    x_tr, y_tr, x_va, y_va = (np.asarray(a) for a in data)
    classes = problem_of(problem).class_targets
    s = DataSummary(len(x_tr), len(x_va), tuple(x_tr.shape[1:] if len(x_tr) else x_va.shape[1:]))
    if classes and len(y_tr):
        counts = Counter(int(v) for v in y_tr.reshape(-1))
        s.classes = {(labels[k] if labels and k < len(labels) else str(k)): counts[k] for k in sorted(counts)}
    elif len(y_tr):
        s.target_range = (float(np.min(y_tr)), float(np.max(y_tr)))
    s.leaks = len(find_leaks(array_hashes(x_tr), array_hashes(x_va)))
    src = x_tr if len(x_tr) else x_va
    ys = y_tr if len(x_tr) else y_va
    for i in range(min(n_thumbs, len(src))):
        s.thumbnails.append(to_thumbnail(src[i]))
        y = ys[i]
        if classes:
            k = int(np.asarray(y).reshape(-1)[0])
            s.captions.append(labels[k] if labels and k < len(labels) else str(k))
        else:
            s.captions.append(f"{float(np.asarray(y).reshape(-1)[0]):.3g}")
    return s


# data entries for the user's own data ----------------------------------------------------------------------
@dataclass
class FolderIndex:
    """A folder of labelled images: root/<class>/<image>; classes sorted by name."""

    files: list[Path]
    labels: np.ndarray
    classes: list[str]
    hashes: list[str]


def scan_folder(path: str | Path) -> FolderIndex:
    """Index root/<class>/<image> (the image suffix registry, not recursive inside a class folder, hidden files
    skipped); BadInput if the layout is not that."""
    from .collection import file_sha256, is_image_name

    root = Path(path).expanduser()
    if not root.is_dir():
        raise BadInput(f"{root}: not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files: list[Path] = []
    labels: list[int] = []
    for k, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.is_file() and is_image_name(f) and not f.name.startswith("."):
                files.append(f)
                labels.append(k)
    if len(classes) < 2 or not files:
        raise BadInput(f"{root}: expected one sub-folder of images per class (at least two classes), "
                       f"found {len(classes)} class folder(s) and {len(files)} image(s)")
    return FolderIndex(files, np.array(labels, np.int64), classes, [file_sha256(f) for f in files])


def _load_rgb(path: Path, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3); the header is checked first, so an oversized image is refused undecoded."""
    import cv2

    from .io.images import read_image

    return cv2.resize(read_image(path), (size, size), interpolation=cv2.INTER_AREA)


def _normalize(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 → (N, 3, H, W) float32 in [-1, 1] (mean 0.5, std 0.5, like the demo model)."""
    x = images.astype(np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def folder_dataset(seed: int, path: str, size: int = 64, val_fraction: float = 0.2,
                   **_: Any) -> tuple[np.ndarray, ...]:
    """Loop data entry for a labelled image folder: resized RGB in [-1, 1], split by content hash (seeded);
    raises DataLeakage if identical files would straddle the split (they cannot with split_by_hash)."""
    idx = scan_folder(path)
    tr, va = split_by_hash(idx.hashes, val_fraction, seed)
    check_no_leakage([idx.hashes[i] for i in tr], [idx.hashes[i] for i in va],
                     [str(idx.files[i]) for i in tr], [str(idx.files[i]) for i in va])
    images = np.stack([_load_rgb(f, size) for f in idx.files])
    x = _normalize(images)
    return x[tr], idx.labels[tr], x[va], idx.labels[va]


def hdf5_dataset(seed: int, path: str, images: str = "", targets: str = "", val_fraction: float = 0.2,
                 size: int = 0, **_: Any) -> tuple[np.ndarray, ...]:
    """Loop data entry for an HDF5 stack: images (N,H,W) or (N,H,W,C) from `images` (default /images or
    /holograms), targets from `targets` (default /labels or /z_m); per-sample standardised, split by content."""
    import h5py

    p = Path(path).expanduser()
    try:
        with h5py.File(p, "r") as f:
            iname = images or next((n for n in ("images", "holograms") if n in f), "")
            tname = targets or next((n for n in ("labels", "z_m") if n in f), "")
            if not iname or not tname:
                raise BadInput(f"{p}: needs an images (/images or /holograms) and a targets (/labels or /z_m) "
                               "dataset")
            x = np.asarray(f[iname], dtype=np.float32)
            y = np.asarray(f[tname])
    except OSError as e:
        raise BadInput(f"{p}: not a readable HDF5 file ({e})") from None
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        x = x.transpose(0, 3, 1, 2)
    else:
        raise BadInput(f"{p}: /{iname} must be (N,H,W) or (N,H,W,C), got {x.shape}")
    if len(y) != len(x):
        raise BadInput(f"{p}: {len(x)} images but {len(y)} targets")
    if size and x.shape[-1] != size:
        import cv2

        x = np.stack([np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in s]) for s in x])
    hashes = array_hashes(x)
    mu = x.mean(axis=(1, 2, 3), keepdims=True)
    sd = x.std(axis=(1, 2, 3), keepdims=True) + 1e-6
    x = ((x - mu) / sd).astype(np.float32)
    tr, va = split_by_hash(hashes, val_fraction, seed)
    check_no_leakage([hashes[i] for i in tr], [hashes[i] for i in va])
    return x[tr], y[tr], x[va], y[va]
