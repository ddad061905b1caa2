"""Deterministic ECG-screening training data: simulated 12-lead records of each class rendered as paper ECGs (clean,
scanned, photographed) → model inputs; seed-disjoint and content-hash-disjoint train/val/held-out parts, cached."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from app.core import paths
from app.core.errors import BadInput

from .preprocess import DEFAULT_SIZE, letterbox_gray, normalise
from .render import LAYOUTS, STYLES, render
from .types import CLASSES
from .waveform import simulate

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: max-channel grayscale
PARTS = {"train": 0, "val": 1, "heldout": 2}
DEFAULT_LAYOUTS: tuple[str, ...] = ("3x4+II", "3x4", "6x2", "12x1")
PAGE_WIDTH_IN = 274.0 / 25.4  # rendered page width (margins + calibration + 10 s at 25 mm/s)


def cache_dir(path: str | Path | None = None) -> Path:
    return Path(path) if path else paths.user_home() / "cache" / "ecg-screen"


def record_seed(seed: int, part: str, class_index: int, i: int) -> int:
    """The simulator/renderer seed of item i of a class in a part; parts never share a seed stream."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, PARTS[part], class_index, i]).generate_state(1)[0])


def make_item(label: str, rseed: int, size: tuple[int, int], styles: Sequence[str], layouts: Sequence[str]
              ) -> tuple[np.ndarray, dict[str, Any]]:
    """One (H, W) uint8 letterboxed grayscale model image and how it was made."""
    rng = np.random.default_rng([rseed, 5])
    style = str(styles[int(rng.integers(len(styles)))])
    layout = str(layouts[int(rng.integers(len(layouts)))])
    dpi = float(np.clip(size[1] / PAGE_WIDTH_IN * rng.uniform(2.5, 4.5), 50.0, 300.0))
    rec = simulate(label, rseed)
    img = render(rec, layout=layout, style=style, dpi=dpi, seed=rseed, grid=None, header=None)
    return letterbox_gray(img, size), {"style": style, "layout": layout, "dpi": round(dpi, 1),
                                       "subtype": rec.meta.get("subtype"), "territory": rec.meta.get("territory")}


def _make_indexed(args: tuple) -> tuple[np.ndarray, dict[str, Any]]:
    return make_item(*args)


def _generate(seed: int, part: str, n_per_class: int, size: tuple[int, int], styles: Sequence[str],
              layouts: Sequence[str], workers: int | None = None) -> dict[str, np.ndarray]:
    """Simulate and render every item; items are independent and seeded, so a process pool (one process per core
    by default) gives the same arrays as one process. A frozen app generates in-process (no spawn entry point)."""
    jobs = [(label, record_seed(seed, part, c, i), size, tuple(styles), tuple(layouts))
            for i in range(n_per_class) for c, label in enumerate(CLASSES)]
    workers = min(len(jobs), workers or (os.cpu_count() or 1))
    t0 = time.perf_counter()
    if workers > 1 and len(jobs) >= 64 and not getattr(sys, "frozen", False):
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            items = list(pool.map(_make_indexed, jobs, chunksize=16))
    else:
        items = [make_item(*j) for j in jobs]
    dt = time.perf_counter() - t0
    if items:
        log.info("ECG %s data: %d images in %.1f s (%.0f/s, %d processes)", part, len(items), dt,
                 len(items) / max(dt, 1e-9), workers)
    h, w = size
    xs = [x for x, _ in items]
    return {"x": np.stack(xs) if xs else np.zeros((0, h, w), np.uint8),
            "y": np.array([CLASSES.index(j[0]) for j in jobs], np.int64),
            "style": np.array([info["style"] for _, info in items], dtype="<U16"),
            "sha256": np.array([hashlib.sha256(x.tobytes()).hexdigest() for x in xs], dtype="<U64")}


def _cached(part: str, key: dict[str, Any], build, folder: Path | None) -> dict[str, np.ndarray]:
    if folder is None:
        return build()
    digest = hashlib.sha256(json.dumps({**key, "part": part, "v": CACHE_VERSION}, sort_keys=True).encode()
                            ).hexdigest()[:16]
    path = folder / f"{part}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                log.info("ECG %s data from cache %s", part, path)
                return {k: z[k] for k in ("x", "y", "style", "sha256")}
        except (OSError, KeyError, ValueError):
            log.warning("unreadable cache %s; regenerating", path)
    d = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npz")
        np.savez(tmp, **d)
        tmp.replace(path)
    except OSError as e:
        log.warning("cannot cache ECG data in %s (%s)", folder, e)
    return d


def _dedupe(d: dict[str, np.ndarray], seen: set[str]) -> dict[str, np.ndarray]:
    """Drop items whose content hash is in `seen` or repeats an earlier item."""
    keep, local = [], set(seen)
    for i, h in enumerate(d["sha256"]):
        if h not in local:
            keep.append(i)
            local.add(str(h))
    if len(keep) == len(d["sha256"]):
        return d
    log.info("dropped %d duplicate images", len(d["sha256"]) - len(keep))
    return {k: v[keep] for k, v in d.items()}


def _parts(seed: int, split: str, n_per_class: int, n_val_per_class: int, size: tuple[int, int],
           styles: Sequence[str], layouts: Sequence[str], cache: str | None, use_cache: bool,
           train_seed: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    if split not in ("train", "heldout"):
        raise BadInput(f"split must be 'train' or 'heldout', got {split!r}")
    bad = [s for s in styles if s not in STYLES] + [lay for lay in layouts if lay not in LAYOUTS]
    if bad or not styles or not layouts:
        raise BadInput(f"unknown or no styles/layouts {bad}; use styles {STYLES} and layouts {LAYOUTS}")
    size = (int(size[0]), int(size[1]))
    folder = cache_dir(cache) if use_cache else None
    key = {"seed": int(seed), "size": list(size), "styles": list(styles), "layouts": list(layouts)}
    # held-out data is checked against the training set it will judge (train_seed), loaded from the cache
    tseed = int(seed if train_seed is None or split == "train" else train_seed)
    train = _cached("train", {**key, "seed": tseed, "n": int(n_per_class)},
                    lambda: _generate(tseed, "train", n_per_class, size, styles, layouts), folder)
    train = _dedupe(train, set())
    other = "val" if split == "train" else "heldout"
    held = _cached(other, {**key, "n": int(n_val_per_class)},
                   lambda: _generate(seed, other, n_val_per_class, size, styles, layouts), folder)
    return train, _dedupe(held, {str(h) for h in train["sha256"]})


def make_dataset(seed: int = 0, split: str = "train", n_per_class: int = 500, n_val_per_class: int = 100,
                 size: tuple[int, int] = DEFAULT_SIZE, styles: Sequence[str] = STYLES,
                 layouts: Sequence[str] = DEFAULT_LAYOUTS, cache: str | None = None, use_cache: bool = True,
                 train_seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loop data entry `plugins.ecg.dataset:make_dataset` → (x_train, y_train, x_val, y_val): x (N, 1, H, W)
    float32 (`preprocess.to_model_input`), y class indices into CLASSES. split "train": validation from other seeds;
    split "heldout": the training part is empty and validation is a third, seed-disjoint set, checked against the
    training set of `train_seed` (the recipe's data seed; default: `seed`). Validation/held-out images whose sha256
    equals a training image's are dropped. uint8 arrays are cached under
    <user data>/cache/ecg-screen (or `cache`)."""
    train, held = _parts(seed, split, n_per_class, n_val_per_class, size, styles, layouts, cache, use_cache,
                         train_seed)
    xv = normalise(held["x"])[:, None]
    if split == "heldout":
        h, w = held["x"].shape[1:]
        return np.zeros((0, 1, h, w), np.float32), np.zeros(0, np.int64), xv, held["y"]
    return normalise(train["x"])[:, None], train["y"], xv, held["y"]


def heldout_styles(seed: int = 0, n_per_class: int = 500, n_val_per_class: int = 100,
                   size: tuple[int, int] = DEFAULT_SIZE, styles: Sequence[str] = STYLES,
                   layouts: Sequence[str] = DEFAULT_LAYOUTS, cache: str | None = None, use_cache: bool = True,
                   split: str = "heldout", train_seed: int | None = None) -> np.ndarray:
    """The style ("clean" | "scanned" | "photographed") of each validation item of make_dataset(...) with the same
    arguments, in the same order, for per-style accuracy."""
    _, held = _parts(seed, split, n_per_class, n_val_per_class, size, styles, layouts, cache, use_cache,
                     train_seed)
    return held["style"].astype(str)
