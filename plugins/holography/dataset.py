"""Deterministic autofocus training data from the hologram simulator (numpy only): crops of the demodulated field
(autofocus preprocessing) labelled with z in µm, a held-out split of unseen object kinds and carriers, cached."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.core import paths

from .autofocus import DEFAULT_PREPROCESS, crop_source, crops_to_input, model_field, select_crops
from .objects import HELDOUT_KINDS, TRAIN_KINDS
from .optics import preset
from .physics import Scene, camera, draw_session, simulate_stack
from .reconstruct import Reconstructor

log = logging.getLogger(__name__)

# Off-axis carrier settings: |carrier| bands (cycles/pixel) and direction sectors (degrees); held-out sets use only
# the complementary ones, so they test carriers the model never saw.
TRAIN_CARRIER_BANDS = ((0.15, 0.19), (0.21, 0.25), (0.27, 0.30))
TRAIN_ANGLE_SECTORS = ((-90.0, -60.0), (-30.0, 0.0), (30.0, 60.0))
HELDOUT_CARRIER_BANDS = ((0.19, 0.21), (0.25, 0.27))
HELDOUT_ANGLE_SECTORS = ((-60.0, -30.0), (0.0, 30.0), (60.0, 90.0))
LABEL_SCALE = 1e6  # labels are z in µm (model output × 1e-6 = metres)
CACHE_VERSION = 2  # 2: the qmap input became polar


def cache_dir(path: str | Path | None = None) -> Path:
    return Path(path) if path else paths.user_home() / "cache" / "holo-autofocus"


def _frame_data(rec: Reconstructor, frame: np.ndarray, pp: dict[str, Any], n: int,
                rng: np.random.Generator, cache: dict | None = None) -> np.ndarray:
    _, f = model_field(rec, frame, pp)
    f = crop_source(rec, frame, pp, f, cache)
    return crops_to_input(f, select_crops(f, pp, n, rng=rng), pp)


def simulate_crops(seed: int, n_scenes: int, z_per_scene: int, crops_per_frame: int, size: int = 512,
                   preset_name: str = "dhm-offaxis-10x", kinds: tuple[str, ...] = TRAIN_KINDS,
                   carrier_bands: tuple[tuple[float, float], ...] = TRAIN_CARRIER_BANDS,
                   angle_sectors: tuple[tuple[float, float], ...] = TRAIN_ANGLE_SECTORS,
                   bg_fraction: float = 0.5, preprocess: dict[str, Any] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """`n_scenes` specimens, each in its own session (carrier from the bands/sectors, NA, camera), imaged at
    `z_per_scene` uniform random z; `crops_per_frame` highest-energy crops of each frame. A `bg_fraction` of the
    scenes is reconstructed with a background hologram, the rest without; the reconstructor knows the true NA
    for half of the scenes and the preset's nominal NA otherwise. Returns (x (N,C,s,s) float16, z µm (N,))."""
    p = preset(preset_name)
    pp = {**DEFAULT_PREPROCESS, **(preprocess or {})}
    lo, hi = p.optics.z_range_m
    xs, ys = [], []
    t0 = time.perf_counter()
    for i in range(n_scenes):
        rng = np.random.default_rng([seed, 7, i])
        band = carrier_bands[int(rng.integers(len(carrier_bands)))]
        sector = angle_sectors[int(rng.integers(len(angle_sectors)))]
        s = draw_session(preset_name, rng, carrier_cpp=band, carrier_angle_deg=sector)
        kind = str(rng.choice(list(kinds)))
        o = p.optics.with_(na=s.na)
        scene = Scene(o, s, (size, size), kind, rng, z_max_m=max(abs(lo), abs(hi)))
        level = scene.background_level()
        bg = None
        if rng.random() < bg_fraction:
            empty = Scene(o, s, (size, size), None, rng, z_max_m=max(abs(lo), abs(hi)))
            bg = camera(empty.intensity(0.0), s, level, rng)
        rec = Reconstructor(o if rng.random() < 0.5 else p.optics, bg)
        cache: dict = {}
        for z in rng.uniform(lo, hi, z_per_scene):
            frame = camera(scene.intensity(float(z)), s, level, rng)
            xs.append(_frame_data(rec, frame, pp, crops_per_frame, rng, cache).astype(np.float16))
            ys.append(np.full(crops_per_frame, z * LABEL_SCALE, np.float32))
        if (i + 1) % 50 == 0:
            log.info("simulated %d/%d scenes (%.0f s)", i + 1, n_scenes, time.perf_counter() - t0)
    if not xs:
        c = len(pp["channels"])
        return np.zeros((0, c, int(pp["size"]), int(pp["size"])), np.float16), np.zeros(0, np.float32)
    return np.concatenate(xs), np.concatenate(ys)


def heldout_stacks(seed: int, n_stacks: int, per_stack: int, size: int = 512,
                   preset_name: str = "dhm-offaxis-10x", inline_term: bool = True
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, dict]]:
    """Held-out off-axis stacks from `simulate_stack`: unseen object kinds (HELDOUT_KINDS) and carrier settings
    (HELDOUT_CARRIER_BANDS × HELDOUT_ANGLE_SECTORS, cycled over stacks), each with its background hologram
    (`inline_term` False: the idealised holograms of physics.Scene.intensity, for diagnosis)."""
    out = []
    for k in range(n_stacks):
        band = HELDOUT_CARRIER_BANDS[k % len(HELDOUT_CARRIER_BANDS)]
        sector = HELDOUT_ANGLE_SECTORS[k % len(HELDOUT_ANGLE_SECTORS)]
        h, z, bg, attrs = simulate_stack(preset_name, per_stack, size, seed=seed * 1000 + k, mode="offaxis",
                                         kinds=HELDOUT_KINDS, carrier_cpp=band, carrier_angle_deg=sector,
                                         inline_term=inline_term)
        out.append((h, z, bg, attrs))
    return out


def heldout_crops(seed: int, n_stacks: int, per_stack: int, crops_per_frame: int, size: int = 512,
                  preset_name: str = "dhm-offaxis-10x", preprocess: dict[str, Any] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Crops (as the autofocus takes them at inference) of the held-out stacks, labelled in µm."""
    from .optics import Optics

    pp = {**DEFAULT_PREPROCESS, **(preprocess or {})}
    xs, ys = [], []
    for h, z, bg, attrs in heldout_stacks(seed, n_stacks, per_stack, size, preset_name):
        rec = Reconstructor(Optics.from_dict(attrs), bg)
        cache: dict = {}
        for frame, zi in zip(h, z, strict=True):
            _, f = model_field(rec, frame, pp)
            f = crop_source(rec, frame, pp, f, cache)
            xs.append(crops_to_input(f, select_crops(f, pp, crops_per_frame), pp).astype(np.float16))
            ys.append(np.full(crops_per_frame, zi * LABEL_SCALE, np.float32))
    return np.concatenate(xs), np.concatenate(ys)


def _cached(name: str, key: dict[str, Any], build, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    digest = hashlib.sha256(json.dumps({**key, "v": CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"{name}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path) as z:
                log.info("autofocus data from cache %s", path)
                return z["x"], z["y"]
        except (OSError, KeyError, ValueError):
            log.warning("unreadable cache %s; re-simulating", path)
    x, y = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part.npz")
        np.savez(tmp, x=x, y=y)
        tmp.replace(path)
    except OSError as e:
        log.warning("cannot cache autofocus data in %s (%s)", folder, e)
    return x, y


def make_dataset(seed: int = 0, split: str = "train", n_scenes: int = 600, z_per_scene: int = 6,
                 crops_per_frame: int = 4, n_val_scenes: int = 40, size: int = 512,
                 preset_name: str = "dhm-offaxis-10x", heldout_stacks_n: int = 8, heldout_per_stack: int = 8,
                 cache: str | None = None, preprocess: dict[str, Any] | None = None, label_unit_um: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loop data entry `plugins.holography.dataset:make_dataset` → (x_train, y_train, x_val, y_val), labels z in µm.
    split "train": training kinds/carriers, validation from other scenes of the same distribution (seed-disjoint);
    split "heldout": validation = held-out kinds and carriers (for card metrics); the training part is empty.
    Labels are z in units of `label_unit_um` µm (the card's preprocess.output_scale_m = label_unit_um × 1e-6).
    Arrays are cached under <user data>/cache/holo-autofocus (or `cache`)."""
    folder = cache_dir(cache)
    key = dict(seed=seed, size=size, preset=preset_name, preprocess={**DEFAULT_PREPROCESS, **(preprocess or {})})
    if split == "heldout":
        x, y = _cached("heldout", {**key, "n": heldout_stacks_n, "per": heldout_per_stack, "c": crops_per_frame},
                       lambda: heldout_crops(seed, heldout_stacks_n, heldout_per_stack, crops_per_frame, size,
                                             preset_name, preprocess), folder)
        y = y / np.float32(label_unit_um)
        return x[:0].astype(np.float32), y[:0], x.astype(np.float32), y
    if split != "train":
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    xt, yt = _cached("train", {**key, "n": n_scenes, "zs": z_per_scene, "c": crops_per_frame},
                     lambda: simulate_crops(seed, n_scenes, z_per_scene, crops_per_frame, size, preset_name,
                                            preprocess=preprocess), folder)
    xv, yv = _cached("val", {**key, "n": n_val_scenes, "zs": z_per_scene, "c": crops_per_frame},
                     lambda: simulate_crops(seed + 104729, n_val_scenes, z_per_scene, crops_per_frame, size,
                                            preset_name, preprocess=preprocess), folder)
    u = np.float32(label_unit_um)
    return xt.astype(np.float32), yt / u, xv.astype(np.float32), yv / u


def dataset_summary(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Channel means/stds and the label range (for logs and sanity checks)."""
    return {"n": int(len(x)), "y_min_um": float(y.min()) if len(y) else math.nan,
            "y_max_um": float(y.max()) if len(y) else math.nan,
            **{f"ch{i}_std": float(x[:, i].astype(np.float32).std()) for i in range(x.shape[1])}}
