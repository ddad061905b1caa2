"""Qt-free engine of the ECG plug-in: read ECG files, screen them with the installed `ecg.screen` model (batched
onnxruntime), attention-rollout heatmaps from the model folder's checked `rollout.onnx`, interval measurements."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from app.core import runtime
from app.core.card import sha256_file
from app.core.errors import ModelError, VitascopeError
from app.core.jobs import CancelToken
from app.core.plugin_api import Host
from app.core.task_model import TaskModel
from app.core.zoo import ModelHandle

from . import readers
from .preprocess import letterbox_box, to_model_input
from .types import CLASSES, EcgInput, ScreenResult

TASK = "ecg.screen"
DEFAULT_SIZE = (256, 352)
log = logging.getLogger(__name__)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class EcgEngine:
    """Screens EcgInputs. The model is looked up through the Host (zoo), opened lazily, dropped when the zoo
    changes; `explain` adds the attention-rollout heatmap when the model ships a rollout.onnx whose sha256 matches."""

    def __init__(self, host: Host, model_id: str | None = None) -> None:
        self.host = host
        self._rollout: object | None = None
        self._rollout_checked = False
        self._model = TaskModel(host, TASK, model_id, on_forget=self._forget_rollout)

    # models ----------------------------------------------------------------------------------------------------
    def _forget_rollout(self) -> None:
        self._rollout = None
        self._rollout_checked = False

    def available_models(self) -> list[str]:
        return self._model.available()

    def select_model(self, model_id: str | None) -> None:
        self._model.select(model_id)

    def use_handle(self, handle: ModelHandle) -> None:
        """Screen with an already opened model (e.g. a model folder given on the command line)."""
        self._model.use(handle)

    @property
    def model(self) -> ModelHandle:
        return self._model.handle

    def model_info(self) -> tuple[str, str] | None:
        """(model id, sha256) of the model screening would use, or None when none is installed or it fails checks."""
        try:
            card = self.model.card
        except VitascopeError:
            return None
        return card.id, card.sha256

    def labels(self) -> list[str]:
        return list(self.model.card.labels or CLASSES)

    def input_size(self) -> tuple[int, int]:
        size = self.model.card.preprocess.get("size", DEFAULT_SIZE)
        h, w = (int(v) for v in (size if isinstance(size, (list, tuple)) else (size, size)))
        return h, w

    def _rollout_session(self) -> object | None:
        """The rollout model of the current model folder, checked against the card's sha256; None if absent/bad."""
        if self._rollout_checked:
            return self._rollout
        handle = self.model
        self._rollout_checked = True
        table = handle.card.extra.get("explain") or {}
        path = handle.folder / str(table.get("file", ""))
        if not table or not path.is_file():
            return None
        if sha256_file(path) != table.get("sha256"):
            self.host.notify(f"{handle.card.id}: {path.name} does not match its card's sha256; heatmaps are off",
                             "warning")
            return None
        try:
            self._rollout = runtime.create_session(path, warmup=False)
        except Exception as e:  # a broken explain file must not stop screening
            self.host.notify(f"{handle.card.id}: cannot load {path.name} ({e.__class__.__name__}); heatmaps are off",
                             "warning")
        return self._rollout

    # reading ---------------------------------------------------------------------------------------------------
    def read(self, path: str | Path) -> list[EcgInput]:
        """Every screenable item in a file or folder (raises a VitascopeError with one line when unreadable)."""
        return readers.read_inputs(path)

    def read_many(self, paths: Iterable[str | Path]) -> tuple[list[EcgInput], list[tuple[str, str]]]:
        return readers.read_many(list(paths))

    def demo_files(self) -> list[Path]:
        """The sample ECGs bundled with the app (rendered by the simulator, one per class)."""
        folder = self.host.resource("samples/ecg")
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".hea", ".dcm"))

    def demo_source(self) -> None:
        return None  # ECGs are files, not a stream

    # screening -------------------------------------------------------------------------------------------------
    def preprocess(self, inputs: Sequence[EcgInput]) -> np.ndarray:
        size = self.input_size()
        return np.stack([to_model_input(inp.image, size) for inp in inputs]).astype(np.float32)

    def screen(self, inp: EcgInput, explain: bool = True) -> ScreenResult:
        """Screen one input; with `explain`, add the attention-rollout heatmap (h, w) of the model input."""
        return self.screen_batch([inp], explain=explain)[0]

    def screen_batch(self, inputs: Sequence[EcgInput], explain: bool = False) -> list[ScreenResult]:
        if not inputs:
            return []
        handle = self.model
        x = self.preprocess(inputs)
        heat: np.ndarray | None = None
        sess = self._rollout_session() if explain else None
        if sess is not None:
            logits, heat = sess.run(None, {handle.input_names[0]: x})
        else:
            (logits,) = handle.run(x)
        if not np.isfinite(logits).all():
            raise ModelError(f"{handle.card.id}: the model returned NaN or infinite scores")
        probs = softmax(logits.astype(np.float64))
        labels = self.labels()
        out = []
        for i, inp in enumerate(inputs):
            p = probs[i]
            hm = None
            if heat is not None:  # the map over the model input, cropped to where the image sits in it
                y0, x0, nh, nw = letterbox_box(inp.image.shape, (x.shape[-2], x.shape[-1]))
                hm = _upsample(heat[i], x.shape[-2], x.shape[-1])[y0:y0 + nh, x0:x0 + nw]
            out.append(ScreenResult(source=inp.source, label=labels[int(np.argmax(p))],
                                    probabilities={lab: float(v) for lab, v in zip(labels, p, strict=True)},
                                    model_id=handle.card.id, model_sha256=handle.card.sha256, heatmap=hm,
                                    measurements=self.measurements(inp)))
        return out

    @staticmethod
    def measurements(inp: EcgInput) -> dict[str, float]:
        if inp.record is None:
            return {}
        from .measure import measure

        try:
            return measure(inp.record)
        except Exception as e:  # measurement is an aid; a failure must not lose the screening result
            log.warning("%s: interval measurement failed (%s)", inp.source, e)
            return {}

    def screen_paths(self, paths: Iterable[str | Path], *, batch: int = 8, cancel: CancelToken | None = None,
                     progress: Callable[[int, int], None] | None = None
                     ) -> tuple[list[ScreenResult], list[tuple[str, str]]]:
        """Read and screen files in batches; unreadable files are returned as (path, message), the rest go on."""
        paths = list(paths)
        results: list[ScreenResult] = []
        errors: list[tuple[str, str]] = []
        pending: list[EcgInput] = []
        for i, path in enumerate(paths):
            if cancel is not None and cancel.cancelled:
                break
            try:
                pending.extend(self.read(path))
            except VitascopeError as e:
                errors.append((str(path), str(e)))
            if len(pending) >= batch or i == len(paths) - 1:
                results.extend(self.screen_batch(pending))
                pending = []
            if progress is not None:
                progress(i + 1, len(paths))
        if pending:
            results.extend(self.screen_batch(pending))
        return results, errors

    def close(self) -> None:
        self._model.forget()


def _upsample(rel: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    up = cv2.resize(np.asarray(rel, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(up, 0.0, 1.0)
