"""The retrieval training task's data (Qt- and torch-free): the user's labelled folders (sub-folder = class or
identity) or synthetic identities, split by class so the held-out part shares no class with training, and the
held-out evaluation of an exported model with the plug-in's protocol (each held-out image queries all others)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from app.core.collection import iter_image_files
from app.core.errors import BadInput

from .embedders import OnnxEmbedder, prepare
from .engine import evaluate, read_rgb
from .layouts import EvalSet
from .metrics import RankMetrics, cosine_distance, rank_metrics
from .synthetic import make_split

MEAN = STD = 0.5  # the DCAL models' preprocessing (their cards say so)
MIN_CLASSES = 4  # at least two classes on each side of the split


@dataclass
class ClassSplit:
    """Training and held-out images of disjoint classes. Iterates as (x_train, y_train, x_val, y_val) like every
    wizard data entry: float32 (n, 3, size, size) normalised as the model wants, labels 0..C-1 on each side.
    `files_*` are empty for synthetic data; `unreadable` lists (file, reason) of skipped images; `photos` says
    whether mirrored images keep their class (photos: yes; synthetic identities: no)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    train_classes: list[str]
    heldout_classes: list[str]
    seed: int
    files_train: list[Path] = field(default_factory=list)
    files_val: list[Path] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    photos: bool = True

    def __iter__(self):
        return iter((self.x_train, self.y_train, self.x_val, self.y_val))

    def record(self) -> dict[str, Any]:
        """What a card records of the split: seed, the classes on each side, image counts, skipped files."""
        return {"seed": self.seed, "train_classes": list(self.train_classes),
                "heldout_classes": list(self.heldout_classes), "n_train": int(len(self.y_train)),
                "n_heldout": int(len(self.y_val)), "unreadable": [f for f, _ in self.unreadable]}


def split_classes(classes: list[str], seed: int, heldout_fraction: float) -> tuple[list[str], list[str]]:
    """(training classes, held-out classes): a seeded permutation of the sorted names; at least two on each side."""
    if len(classes) < MIN_CLASSES:
        raise BadInput(f"{len(classes)} classes; a class-disjoint split needs at least {MIN_CLASSES} "
                       "(two to train on, two held out)")
    if not 0.0 < heldout_fraction < 1.0:
        raise BadInput(f"held-out fraction must be in (0, 1), got {heldout_fraction}")
    names = sorted(classes)
    order = np.random.default_rng(seed).permutation(len(names))
    n_held = min(len(names) - 2, max(2, int(round(heldout_fraction * len(names)))))
    held = sorted(names[i] for i in order[:n_held])
    return [c for c in names if c not in held], held


def read_class_folders(root: str | Path, size: int
                       ) -> tuple[dict[str, list[Path]], list[tuple[str, str]], dict[Path, np.ndarray]]:
    """({class: readable files}, [(file, reason)] unreadable, {file: RGB image resized to size × size as the
    embedders resize}) of a folder of class sub-folders. BadInput (one line) when there are no sub-folders with
    images or a class has fewer than two readable images."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BadInput(f"{root}: no such folder")
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subs:
        raise BadInput(f"{root}: no sub-folders; put the images of each class or identity in a sub-folder of its own")
    found: dict[str, list[Path]] = {}
    images: dict[Path, np.ndarray] = {}
    bad: list[tuple[str, str]] = []
    for sub in subs:
        for f in iter_image_files(sub):
            try:
                img = read_rgb(f)
            except BadInput as e:
                msg = str(e)
                bad.append((str(f), msg[len(str(f)) + 2:] if msg.startswith(f"{f}: ") else msg))
                continue
            images[f] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) if img.shape[:2] != (size, size) \
                else img
            found.setdefault(sub.name, []).append(f)
    if not found:
        raise BadInput(f"{root}: no readable images in its sub-folders" + (f" ({len(bad)} unreadable)" if bad else ""))
    single = sorted(c for c, fs in found.items() if len(fs) < 2)
    if single:
        raise BadInput(f"{root / single[0]}: only one readable image; every class needs at least two (a matching "
                       f"pair){f' — {len(single)} such classes' if len(single) > 1 else ''}")
    return found, bad, images


def folder_dataset(seed: int, path: str, val_fraction: float = 0.2, size: int = 64) -> ClassSplit:
    """The task's folder entry: the user's class folders split by class (`val_fraction` of the classes held out,
    chosen by `seed`), images resized and normalised as the embedding model reads files; unreadable images are
    skipped and listed."""
    found, bad, images = read_class_folders(path, int(size))
    train_c, held_c = split_classes(list(found), int(seed), float(val_fraction))

    def side(classes: list[str]) -> tuple[np.ndarray, np.ndarray, list[Path]]:
        files = [f for c in classes for f in found[c]]
        y = np.asarray([i for i, c in enumerate(classes) for _ in found[c]], np.int64)
        return prepare([images[f] for f in files], int(size), MEAN, STD), y, files

    xt, yt, ft = side(train_c)
    xv, yv, fv = side(held_c)
    return ClassSplit(xt, yt, xv, yv, train_c, held_c, int(seed), ft, fv, bad, photos=True)


def synthetic_dataset(seed: int, n_ids: int = 60, views: int = 6, size: int = 64,
                      val_fraction: float = 0.25) -> ClassSplit:
    """The task's simulator: `n_ids` synthetic identities × `views` camera views, split by identity."""
    x, y, _ = make_split(int(n_ids), int(views), int(seed), int(size))
    names = [f"id{i:04d}" for i in range(int(n_ids))]
    train_c, held_c = split_classes(names, int(seed), float(val_fraction))
    pos = {c: i for i, c in enumerate(names)}

    def side(classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        idx = np.concatenate([np.flatnonzero(y == pos[c]) for c in classes])
        remap = {pos[c]: i for i, c in enumerate(classes)}
        return prepare(list(x[idx]), int(size), MEAN, STD), np.asarray([remap[int(v)] for v in y[idx]], np.int64)

    xt, yt = side(train_c)
    xv, yv = side(held_c)
    return ClassSplit(xt, yt, xv, yv, train_c, held_c, int(seed), photos=False)


def evaluate_model(handle: Any, split: ClassSplit) -> RankMetrics:
    """An opened `retrieval.embed` model on the held-out classes with the plug-in's `folders` protocol (each image
    queries all others): through engine.evaluate on the files for folder data, on the arrays for synthetic data."""
    embedder = OnnxEmbedder(handle)
    if split.files_val:
        cams = np.full(len(split.y_val), -1, np.int64)
        files = list(split.files_val)
        es = EvalSet("folders", files, split.y_val, cams, files, split.y_val, cams, same_set=True,
                     class_names=tuple(split.heldout_classes))
        return evaluate(es, embedder)
    x = np.asarray(split.x_val, np.float32)
    if x.shape[-1] != embedder.size:
        raise BadInput(f"held-out images are {x.shape[-1]} px but {embedder.model_id} reads {embedder.size} px")
    e = np.concatenate([handle.run(x[i:i + 64])[0] for i in range(0, len(x), 64)])
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return rank_metrics(cosine_distance(e, e), split.y_val, split.y_val, np.eye(len(e), dtype=bool))
