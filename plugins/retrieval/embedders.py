"""Image → unit-vector embedders: an installed ONNX embedding model, and classical baselines (colour histogram,
HOG) with the same interface, so indexing and evaluation treat them alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from app.core.errors import BadInput
from app.core.vector_index import l2_normalise

BASELINES = ("colour-hist", "hog", "hist+hog")


class Embedder(Protocol):
    tag: str  # changes whenever the vectors would change (model id + checksum)
    model_id: str
    dim: int

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray: ...  # RGB uint8 list → (n, dim) unit rows


def prepare(images: Sequence[np.ndarray], size: int, mean: float | list[float] = 0.5,
            std: float | list[float] = 0.5) -> np.ndarray:
    """RGB uint8 images of any size → (n, 3, size, size) float32, resized (area) and normalised."""
    out = np.empty((len(images), 3, size, size), np.float32)
    m = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, np.float32).reshape(-1, 1, 1)
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[2] != 3:
            raise BadInput(f"expected an RGB image, got shape {img.shape}")
        r = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA) if img.shape[:2] != (size, size) else img
        out[i] = (r.transpose(2, 0, 1).astype(np.float32) / 255.0 - m) / s
    return out


class OnnxEmbedder:
    """An installed `retrieval.embed` model (card output `embedding`, (batch, dim))."""

    def __init__(self, handle) -> None:
        card = handle.card
        self.handle = handle
        self.model_id = card.id
        self.tag = f"{card.id}:{card.sha256[:16]}"
        self.dim = int(card.outputs[0].shape[1])
        size = card.preprocess.get("size", 64)
        self.size = int(size[0] if isinstance(size, list) else size)
        self.mean = card.preprocess.get("mean", 0.5)
        self.std = card.preprocess.get("std", 0.5)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, self.dim), np.float32)
        x = prepare(images, self.size, self.mean, self.std)
        return l2_normalise(self.handle.run(x)[0])


class ColourHistogram:
    """HSV joint histogram (8×4×4 bins), square-rooted (Hellinger) and L2-normalised."""

    model_id = "colour-hist"
    tag = "colour-hist:1"
    dim = 8 * 4 * 4

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), np.float32)
        for i, img in enumerate(images):
            small = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
            hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
            h = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
            out[i] = np.sqrt(h / max(h.sum(), 1))
        return l2_normalise(out)


class Hog:
    """HOG on a 64×64 grey image (8-px cells, 16-px blocks, 9 orientations), power-normalised."""

    model_id = "hog"
    tag = "hog:1"

    def __init__(self) -> None:
        self._hog = cv2.HOGDescriptor((64, 64), (16, 16), (8, 8), (8, 8), 9)
        self.dim = int(self._hog.getDescriptorSize())

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(images), self.dim), np.float32)
        for i, img in enumerate(images):
            g = cv2.cvtColor(cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
            out[i] = np.sqrt(np.maximum(self._hog.compute(g).ravel(), 0))
        return l2_normalise(out)


class Concat:
    """Several embedders side by side, each unit length, the whole unit length."""

    def __init__(self, parts: Sequence[Embedder], model_id: str) -> None:
        self.parts = list(parts)
        self.model_id = model_id
        self.tag = model_id + ":" + ",".join(p.tag for p in self.parts)
        self.dim = sum(p.dim for p in self.parts)

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return l2_normalise(np.concatenate([p(images) for p in self.parts], axis=1))


def baseline(name: str) -> Embedder:
    if name == "colour-hist":
        return ColourHistogram()
    if name == "hog":
        return Hog()
    if name == "hist+hog":
        return Concat([ColourHistogram(), Hog()], "hist+hog")
    raise BadInput(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")
