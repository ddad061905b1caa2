"""TinyViT's sparse teacher-logit store (docs/methods.md): per sample per epoch an int32 augmentation seed + top-K int16
class indices + top-K float16 probabilities (4 + 4K bytes); the augmentation is replayed bit-identically from the
seed and the dense target rebuilt with (1 − Σv)/(C − K) on the other classes; `check` recomputes and compares."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from app.core.errors import BadInput

log = logging.getLogger(__name__)
META = "meta.json"
CHECK_ATOL = 2e-3  # float16 probabilities
DEFAULT_OPS = ("hflip", "vflip", "shift")


def record_dtype(topk: int) -> np.dtype:
    return np.dtype([("seed", "<i4"), ("idx", "<i2", (topk,)), ("val", "<f2", (topk,))])


def augment_one(x: torch.Tensor, seed: int, ops: tuple[str, ...] | list[str] = DEFAULT_OPS) -> torch.Tensor:
    """The whole augmentation of one (C, H, W) sample as a pure function of `seed` (bit-identical replay):
    random flips, a 90° rotation (square images) and a circular shift of up to 1/8 of the size."""
    g = torch.Generator().manual_seed(int(seed))
    draws = torch.rand(4, generator=g)
    k = int(torch.randint(0, 4, (1,), generator=g))
    dh, dw = (int(v) for v in torch.randint(-(x.shape[1] // 8), x.shape[1] // 8 + 1, (2,), generator=g))
    if "hflip" in ops and draws[0] < 0.5:
        x = x.flip(2)
    if "vflip" in ops and draws[1] < 0.5:
        x = x.flip(1)
    if "rot90" in ops and x.shape[1] == x.shape[2]:
        x = x.rot90(k, (1, 2))
    if "shift" in ops:
        x = x.roll((dh, dw), (1, 2))
    return x.contiguous()


def epoch_seeds(seed: int, epoch: int, n: int) -> np.ndarray:
    """The int32 augmentation seeds of one epoch (a function of the store seed and the epoch)."""
    return np.random.default_rng([int(seed), int(epoch)]).integers(0, 2**31 - 1, n, dtype=np.int32)


def dense_target(idx: np.ndarray, val: np.ndarray, num_classes: int) -> torch.Tensor:
    """(N, K) indices/probabilities → (N, C): stored values at the top-K, (1 − Σv)/(C − K) elsewhere."""
    n, k = idx.shape
    v = torch.from_numpy(val.astype(np.float32))
    rest = (1.0 - v.sum(1, keepdim=True)).clamp(min=0) / max(1, num_classes - k)
    out = rest.expand(n, num_classes).clone()
    out.scatter_(1, torch.from_numpy(idx.astype(np.int64)), v)
    return out


class LogitStore:
    """A store folder: meta.json + logits_top{K}_epoch{e}.bin (raw records, memory-mapped)."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path, self.meta = path, meta
        self.topk, self.num_classes = int(meta["topk"]), int(meta["num_classes"])
        self.n, self.epochs, self.seed = int(meta["n"]), int(meta["epochs"]), int(meta["seed"])
        self.ops = tuple(meta["ops"])
        self._maps: dict[int, np.ndarray] = {}

    @classmethod
    def open(cls, path: str | Path) -> LogitStore:
        path = Path(path)
        try:
            meta = json.loads((path / META).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(f"{path}: not a logit store (no {META}); write one with `vitascope logits save`") from None
        return cls(path, meta)

    def file(self, epoch: int) -> Path:
        return self.path / f"logits_top{self.topk}_epoch{epoch}.bin"

    def records(self, epoch: int) -> np.ndarray:
        if epoch not in self._maps:
            self._maps[epoch] = np.memmap(self.file(epoch), dtype=record_dtype(self.topk), mode="r",
                                          shape=(self.n,))
        return self._maps[epoch]

    def batch(self, x: torch.Tensor, indices: np.ndarray, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Replayed augmented samples and dense targets for training-set `indices` at `epoch`."""
        rec = self.records(epoch)[np.asarray(indices)]
        xb = torch.stack([augment_one(x[int(i)], int(s), self.ops) for i, s in zip(indices, rec["seed"], strict=True)])
        return xb, dense_target(np.asarray(rec["idx"]), np.asarray(rec["val"]), self.num_classes)


@torch.no_grad()
def _teacher_probs(teacher: nn.Module, xb: torch.Tensor) -> torch.Tensor:
    teacher.eval()
    return torch.softmax(teacher(xb).float(), dim=1)


def save_logits(teacher: nn.Module, x: torch.Tensor, path: str | Path, *, topk: int = 10, epochs: int = 1,
                seed: int = 0, ops: tuple[str, ...] | list[str] = DEFAULT_OPS, batch: int = 256,
                teacher_id: str = "") -> Path:
    """Run the teacher once per sample per epoch on the seeded augmentation and store the top-K records."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        num_classes = int(teacher(x[:1]).shape[1])
    if not 0 < topk <= num_classes or num_classes > 32767:
        raise BadInput(f"top-K {topk} must be in 1..{num_classes} (int16 class indices)")
    meta = {"format": "vitascope.logits", "topk": topk, "num_classes": num_classes, "n": int(len(x)),
            "epochs": epochs, "seed": seed, "ops": list(ops), "teacher": teacher_id,
            "record_bytes": record_dtype(topk).itemsize}
    for e in range(epochs):
        seeds = epoch_seeds(seed, e, len(x))
        rec = np.zeros(len(x), dtype=record_dtype(topk))
        rec["seed"] = seeds
        for i in range(0, len(x), batch):
            xb = torch.stack([augment_one(x[j], int(seeds[j]), ops) for j in range(i, min(len(x), i + batch))])
            v, idx = _teacher_probs(teacher, xb).topk(topk, dim=1)
            rec["idx"][i:i + len(xb)] = idx.numpy().astype(np.int16)
            rec["val"][i:i + len(xb)] = v.numpy().astype(np.float16)
        rec.tofile(path / f"logits_top{topk}_epoch{e}.bin")
        log.info("logit store epoch %d: %d records of %d bytes", e, len(x), rec.dtype.itemsize)
    (path / META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return path


def check_logits(teacher: nn.Module, x: torch.Tensor, path: str | Path, limit: int = 0, batch: int = 256) -> float:
    """Recompute the teacher on the replayed augmentations; return max |stored − recomputed| probability at the
    stored top-K slots (inf if any stored index is not the recomputed top-K set)."""
    store = LogitStore.open(path)
    n = min(store.n, limit or store.n)
    worst = 0.0
    for e in range(store.epochs):
        rec = store.records(e)
        for i in range(0, n, batch):
            ids = np.arange(i, min(n, i + batch))
            xb, _ = store.batch(x, ids, e)
            p = _teacher_probs(teacher, xb)
            idx = torch.from_numpy(np.asarray(rec["idx"][ids]).astype(np.int64))
            got = p.gather(1, idx)
            stored = torch.from_numpy(np.asarray(rec["val"][ids]).astype(np.float32))
            worst = max(worst, float((got - stored).abs().max()))
            # ties aside, the stored indices must be the recomputed top-K
            kth = p.topk(store.topk, dim=1).values[:, -1:]
            if bool((got < kth - CHECK_ATOL).any()):
                return float("inf")
    return worst


def _teacher_and_data(model: str) -> tuple[nn.Module, torch.Tensor, str]:
    from . import loop
    from .teacher import load_teacher, resolve_model_dir

    folder = resolve_model_dir(model)
    teacher, spec, _ = load_teacher(folder)
    if "logits" not in spec.objective.distill_modes:
        raise BadInput(f"{folder}: sparse logits need a classification teacher (task is {spec.task})")
    x, _, _, _ = loop.load_data(spec.data, spec.seed, spec.task)
    return teacher, x, folder.name


def save_for_model(model: str, store: str | Path, topk: int = 10, epochs: int = 1, seed: int = 0) -> Path:
    """`vitascope logits save`: the teacher's training split, seeded augmentations, top-K records."""
    teacher, x, name = _teacher_and_data(model)
    return save_logits(teacher, x, store, topk=topk, epochs=epochs, seed=seed, teacher_id=name)


def check_for_model(model: str, store: str | Path, limit: int = 0) -> float:
    teacher, x, _ = _teacher_and_data(model)
    return check_logits(teacher, x, store, limit)
