"""Labelled evaluation layouts → query and gallery lists: `folders` (sub-folder = class; each image queries all
others), `market1501` (query/ + bounding_box_test/, pid and camera from file names) and `cub` (CUB-200-2011
images.txt, image_class_labels.txt, train_test_split.txt)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.collection import is_image_name, iter_image_files
from app.core.errors import BadInput

LAYOUTS = ("folders", "market1501", "cub")
_MARKET_RE = re.compile(r"([-\d]+)_c(\d)")


@dataclass
class EvalSet:
    """Query and gallery files with labels (class / identity) and cameras (-1 = unknown). When `same_set` the
    queries are the gallery and each query's own entry is excluded."""

    layout: str
    query: list[Path]
    q_labels: np.ndarray
    q_cams: np.ndarray
    gallery: list[Path]
    g_labels: np.ndarray
    g_cams: np.ndarray
    same_set: bool = False
    class_names: tuple[str, ...] = ()

    def exclude(self) -> np.ndarray:
        """(q, g) bool: the query itself, and the same identity seen by the same camera (re-ID protocol)."""
        if self.same_set:
            return np.eye(len(self.query), dtype=bool)
        same_id = self.q_labels[:, None] == self.g_labels[None, :]
        same_cam = (self.q_cams[:, None] == self.g_cams[None, :]) & (self.q_cams[:, None] >= 0)
        return same_id & same_cam


def detect_layout(root: str | Path) -> str:
    root = Path(root)
    if (root / "images.txt").is_file() and (root / "image_class_labels.txt").is_file():
        return "cub"
    if _market_root(root) is not None:
        return "market1501"
    return "folders"


def read_layout(root: str | Path, layout: str | None = None, cub_split: str = "test") -> EvalSet:
    """The evaluation set of `root` in `layout` (detected when None); BadInput names what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root}: no such folder")
    layout = layout or detect_layout(root)
    if layout == "folders":
        return read_folders(root)
    if layout == "market1501":
        return read_market1501(root)
    if layout == "cub":
        return read_cub(root, cub_split)
    raise BadInput(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")


def read_folders(root: Path) -> EvalSet:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for ci, c in enumerate(classes):
        for f in iter_image_files(root / c):
            files.append(f)
            labels.append(ci)
    if not files:
        raise BadInput(f"{root}: no images in sub-folders (layout 'folders': one sub-folder per class)")
    lab = np.asarray(labels, np.int64)
    cams = np.full(lab.size, -1, np.int64)
    return EvalSet("folders", files, lab, cams, files, lab, cams, same_set=True, class_names=tuple(classes))


def _market_root(root: Path) -> Path | None:
    for cand in (root, root / "Market-1501-v15.09.15", root / "market1501" / "Market-1501-v15.09.15"):
        if (cand / "query").is_dir() and (cand / "bounding_box_test").is_dir():
            return cand
    return None


def _market_dir(folder: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    files, pids, cams = [], [], []
    for f in sorted(folder.iterdir()):
        if not f.is_file() or not is_image_name(f):
            continue
        m = _MARKET_RE.search(f.name)
        if m is None:
            raise BadInput(f"{f}: file name is not <pid>_c<camera>... (Market-1501 naming)")
        pid, cam = int(m.group(1)), int(m.group(2))
        if pid == -1:  # junk detections: dropped
            continue
        files.append(f)
        pids.append(pid)
        cams.append(cam - 1)
    return files, np.asarray(pids, np.int64), np.asarray(cams, np.int64)


def read_market1501(root: Path) -> EvalSet:
    base = _market_root(root)
    if base is None:
        raise BadInput(f"{root}: no query/ and bounding_box_test/ folders (layout 'market1501')")
    q, qp, qc = _market_dir(base / "query")
    g, gp, gc = _market_dir(base / "bounding_box_test")
    if not q or not g:
        raise BadInput(f"{base}: query/ or bounding_box_test/ holds no images")
    return EvalSet("market1501", q, qp, qc, g, gp, gc)


def _table(path: Path, what: str) -> dict[int, str]:
    if not path.is_file():
        raise BadInput(f"{path}: missing (layout 'cub' needs images.txt, image_class_labels.txt, "
                       "train_test_split.txt)")
    out: dict[int, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise BadInput(f"{path}: line {n} is not '<image id> <{what}>'")
        out[int(parts[0])] = parts[1].strip()
    return out


def read_cub(root: Path, split: str = "test") -> EvalSet:
    """`split`: "test" (train_test_split = 0, the FGVC test images), "disjoint" (all images of the second half of
    the classes: the metric-learning protocol, CUB classes 101-200), or "all"."""
    if split not in ("test", "disjoint", "all"):
        raise BadInput(f"cub split {split!r}: use test, disjoint or all")
    images = _table(root / "images.txt", "relative path")
    labels = _table(root / "image_class_labels.txt", "class id")
    train = _table(root / "train_test_split.txt", "is_training 1|0")
    img_dir = root / "images" if (root / "images").is_dir() else root
    for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", train)):
        missing = set(images) - set(table)
        if missing:
            raise BadInput(f"{root / name}: no entry for image id {min(missing)}")
    try:
        lab = {i: int(labels[i]) for i in images}
    except ValueError:
        raise BadInput(f"{root / 'image_class_labels.txt'}: class ids must be integers") from None
    classes = sorted(set(lab.values()))
    half = classes[len(classes) // 2] if classes else 0
    keep = []
    for i in sorted(images):
        if (split == "test" and train[i].strip() == "0") or split == "all" or (split == "disjoint"
                                                                             and lab[i] >= half):
            keep.append(i)
    files = [img_dir / images[i] for i in keep]
    for f in files:
        if not f.is_file():
            raise BadInput(f"{f}: listed in images.txt but missing")
    if not files:
        raise BadInput(f"{root}: no images in the {split!r} split")
    y = np.asarray([lab[i] for i in keep], np.int64)
    cams = np.full(y.size, -1, np.int64)
    return EvalSet("cub", files, y, cams, files, y, cams, same_set=True)
