"""Qt-free engine of the demo plug-in: classify RGB images with the installed `demo.shapes` model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from app.core.frames import ArraySource, Frame, FrameSource
from app.core.io.images import to_model_input
from app.core.plugin_api import Host
from app.core.task_model import TaskModel
from app.core.zoo import ModelHandle

TASK = "demo.shapes"


@dataclass
class Classification:
    label: str
    probabilities: dict[str, float]
    model: str
    ms: float
    image: np.ndarray | None = None
    index: int = -1


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class DemoEngine:
    def __init__(self, host: Host, model_id: str | None = None) -> None:
        self.host = host
        self._model = TaskModel(host, TASK, model_id)

    def available_models(self) -> list[str]:
        return self._model.available()

    def select_model(self, model_id: str | None) -> None:
        self._model.select(model_id)

    @property
    def model(self) -> ModelHandle:
        return self._model.handle

    def classify(self, image: np.ndarray) -> Classification:
        handle = self.model
        pre = handle.card.preprocess
        x = to_model_input(image, int(pre.get("size", 64)), pre.get("mean", 0.5), pre.get("std", 0.5))
        t0 = time.perf_counter()
        (logits,) = handle.run(x)
        ms = (time.perf_counter() - t0) * 1e3
        p = softmax(logits.astype(np.float64))[0]
        labels = handle.card.labels or [str(i) for i in range(p.size)]
        k = int(np.argmax(p))
        return Classification(labels[k], {lab: float(v) for lab, v in zip(labels, p, strict=True)},
                              handle.card.id, ms, image)

    def process(self, frame: Frame) -> Classification:
        result = self.classify(frame.data)
        result.index = frame.index
        return result

    def demo_source(self, fps: float = 10.0, seed: int = 0) -> FrameSource:
        from .shapes import LABELS, render_shape

        def gen() -> Iterator[np.ndarray]:
            rng = np.random.default_rng(seed)
            while True:
                yield render_shape(rng, int(rng.integers(len(LABELS))))

        return ArraySource(gen(), fps=fps, name="demo-shapes")

    def close(self) -> None:
        self._model.forget()
