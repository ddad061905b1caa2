"""Qt-free engine of the ECG plug-in: read ECG files, screen them with the installed `ecg.screen` model (batched
onnxruntime), attention-rollout heatmaps from the model's checked `rollout` artifact, interval measurements."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from app.core import runtime
from app.core.errors import ModelError, VitascopeError
from app.core.jobs import CancelToken
from app.core.ood import MahalanobisStats
from app.core.plugin_api import Host
from app.core.task_model import TaskModel
from app.core.zoo import ModelHandle

from .fusion import fuse, restrict
from .gate import RecordGate, gate_record
from .image_gate import REVIEW_THIN, NotAnEcgImage, check_ecg_image
from .opinion import second_opinion
from .preprocess import letterbox_box, to_model_input
from .readers import read_inputs, read_many
from .types import CLASSES, EcgInput, ScreenResult, SecondOpinion

TASK = "ecg.screen"
DEFAULT_SIZE = (256, 352)
MIN_CONFIDENCE = 0.6  # below this calibrated probability the answer is flagged uncertain (card may override)
log = logging.getLogger(__name__)


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class EcgEngine:
    """Screens EcgInputs. The model is looked up through the Host (zoo), opened lazily, dropped when the zoo
    changes; `explain` adds the attention-rollout heatmap when the model ships a `rollout` artifact that passed its
    check."""

    def __init__(self, host: Host, model_id: str | None = None) -> None:
        self.host = host
        self._rollout: object | None = None
        self._rollout_checked = False
        self._ood: MahalanobisStats | None = None
        self._ood_checked = False
        self._ood_refuse = float("inf")
        self._model = TaskModel(host, TASK, model_id, on_forget=self._forget_rollout)

    # models ----------------------------------------------------------------------------------------------------
    def _forget_rollout(self) -> None:
        self._rollout = None
        self._rollout_checked = False
        self._ood = None
        self._ood_checked = False
        self._ood_refuse = float("inf")

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
        """The model's `rollout` artifact (checked by the zoo when the model was opened); None when the card lists
        none or the file failed its check (heat maps are then off, with a notice)."""
        if self._rollout_checked:
            return self._rollout
        handle = self.model
        self._rollout_checked = True
        path = handle.path("rollout")
        if path is None:
            art = handle.card.artifact("rollout")
            if art is not None and "rollout" in handle.left_out:
                self.host.notify(f"{handle.card.id}: {art.file} does not match the card's size and sha256, heatmaps "
                                 f"are off ({handle.left_out['rollout']})", "warning")
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
        return read_inputs(path)

    def read_many(self, paths: Iterable[str | Path]) -> tuple[list[EcgInput], list[tuple[str, str]]]:
        return read_many(list(paths))

    def demo_files(self) -> list[Path]:
        """The sample ECGs bundled with the app (rendered by the simulator, one per class)."""
        folder = self.host.resource("samples")
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".hea", ".dcm"))

    def demo_source(self) -> None:
        return None  # ECGs are files, not a stream

    # screening -------------------------------------------------------------------------------------------------
    def preprocess(self, inputs: Sequence[EcgInput]) -> np.ndarray:
        size = self.input_size()
        return np.stack([to_model_input(inp.image, size) for inp in inputs]).astype(np.float32)

    def calibration(self) -> tuple[float, float]:
        """(temperature, min_confidence) from the card's [calibration] table; (1, 0.6) for uncalibrated models."""
        table = self.model.card.extra.get("calibration") or {}
        try:
            t = float(table.get("temperature", 1.0))
            c = float(table.get("min_confidence", MIN_CONFIDENCE))
        except (TypeError, ValueError):
            raise ModelError(f"{self.model.card.id}: the card's [calibration] table is malformed") from None
        if not (np.isfinite(t) and t > 0 and 0 <= c <= 1):
            raise ModelError(f"{self.model.card.id}: the card's [calibration] temperature {t} is not usable")
        return t, c

    def _ood_stats(self) -> MahalanobisStats | None:
        """The model's OOD statistics (its `ood` artifact, checked by the zoo before the model opened; thresholds
        from the card's [ood] table), or None when it ships none."""
        if self._ood_checked:
            return self._ood
        handle = self.model
        if handle.card.artifact("ood") is not None:  # a model that ships OOD statistics is unusable without them
            path = handle.path("ood")
            if path is None or not path.is_file():
                raise ModelError(f"{handle.card.id}: its ood artifact is missing or failed its check")
            table = handle.card.section("ood")
            stats = MahalanobisStats.load(path)
            try:
                stats.threshold = float(table.get("threshold", stats.threshold))
                self._ood_refuse = float(table.get("refuse", np.inf))
            except (TypeError, ValueError):
                raise ModelError(f"{handle.card.id}: the card's [ood] thresholds are not numbers") from None
            self._ood = stats
        self._ood_checked = True
        return self._ood

    def ood_scores(self, inputs: Sequence[EcgInput]) -> np.ndarray | None:
        """The OOD score of each input's image without any gating (for measuring the score itself); None when the
        model ships no features or statistics."""
        outs = self.model.run(self.preprocess(inputs))
        stats = self._ood_stats() if len(outs) > 1 else None
        return None if stats is None else stats.score(outs[1])

    def screen(self, inp: EcgInput, explain: bool = True) -> ScreenResult:
        """Screen one input; with `explain`, add the attention-rollout heatmap (h, w) of the model input. Raises
        a VitascopeError (one line) for an input that is refused (not an ECG, unreadable waveform)."""
        return self.screen_batch([inp], explain=explain)[0]

    def screen_batch(self, inputs: Sequence[EcgInput], explain: bool = False) -> list[ScreenResult]:
        """Screen several inputs; the first refused one raises (use `screen_paths` to keep a batch going)."""
        out = self._screen(inputs, explain)
        for r in out:
            if isinstance(r, VitascopeError):
                raise r
        return out  # type: ignore[return-value]

    def _gate(self, inp: EcgInput) -> tuple[RecordGate | None, float]:
        """Refuse what cannot be an ECG (raises); for waveforms, what their leads allow to be assessed; for images,
        the share of thin strokes (1.0 for waveforms, rendered here)."""
        if inp.record is None:
            return None, check_ecg_image(inp.image, inp.source)
        gate = gate_record(inp.record, inp.source)
        if gate.refused:
            raise NotAnEcgImage(gate.refuse or f"{inp.source}: the record cannot be screened")
        return gate, 1.0

    def _screen(self, inputs: Sequence[EcgInput], explain: bool = False) -> list[ScreenResult | VitascopeError]:
        out: list[ScreenResult | VitascopeError | None] = [None] * len(inputs)
        gates: dict[int, tuple[RecordGate | None, float]] = {}
        for i, inp in enumerate(inputs):
            try:
                gates[i] = self._gate(inp)
            except VitascopeError as e:
                out[i] = e
        keep = [i for i in range(len(inputs)) if out[i] is None]
        if not keep:
            return out  # type: ignore[return-value]
        handle = self.model
        x = self.preprocess([inputs[i] for i in keep])
        outs = handle.run(x)
        logits, features = outs[0], (outs[1] if len(outs) > 1 else None)
        if not np.isfinite(logits).all():
            raise ModelError(f"{handle.card.id}: the model returned NaN or infinite scores")
        heat: np.ndarray | None = None
        sess = self._rollout_session() if explain else None
        if sess is not None:
            _, heat = sess.run(None, {handle.input_names[0]: x})
        temperature, min_conf = self.calibration()
        probs = softmax(logits.astype(np.float64) / temperature)
        stats = self._ood_stats() if features is not None else None
        scores = stats.score(features) if stats is not None else None
        labels = self.labels()
        for j, i in enumerate(keep):
            inp = inputs[i]
            score = float(scores[j]) if scores is not None else None
            if score is not None and score > self._ood_refuse:
                out[i] = NotAnEcgImage(f"{inp.source}: does not look like an ECG (unlike anything the model was "
                                       f"trained on: OOD score {score:.0f} > {self._ood_refuse:.0f})")
                continue
            hm = None
            if heat is not None:  # the map over the model input, cropped to where the image sits in it
                y0, x0, nh, nw = letterbox_box(inp.image.shape, (x.shape[-2], x.shape[-1]))
                hm = _upsample(heat[j], x.shape[-2], x.shape[-1])[y0:y0 + nh, x0:x0 + nw]
            p = {lab: float(v) for lab, v in zip(labels, probs[j], strict=True)}
            out[i] = self._decide(inp, *gates[i], p, min_conf, score, stats, hm)
        return out  # type: ignore[return-value]

    def _decide(self, inp: EcgInput, gate: RecordGate | None, thin: float, p: dict[str, float], min_conf: float,
                score: float | None, stats: MahalanobisStats | None, heat: np.ndarray | None) -> ScreenResult:
        """The answer for one input: the model's calibrated probabilities, flagged uncertain when they are low or
        the input is unlike the training data; for waveforms fused with the measured second opinion."""
        handle = self.model
        reasons: list[str] = []
        opinion: SecondOpinion | None = None
        disagreement = ""
        scope = "12-lead"
        if gate is not None:
            scope = gate.scope
            opinion = self._second_opinion(inp, gate)
            label, uncertain, reasons, disagreement = fuse(p, opinion, gate)
            p = restrict(p, tuple(gate.assessed or CLASSES))
            label = label or max(p, key=p.get)
        else:
            label = max(p, key=p.get)
            uncertain = False
        if gate is None and p[label] < min_conf:  # waveforms: the fusion already judged the model's answer
            uncertain = True
            reasons.append(f"low confidence: {p[label]:.2f} < {min_conf:.2f}")
        if thin < REVIEW_THIN:
            uncertain = True
            reasons.append(f"unlike an ECG page: few thin traces ({thin:.0%} of the ink): review")
        if score is not None and stats is not None and score > stats.threshold:
            uncertain = True
            reasons.append(f"unlike the training data (OOD score {score:.0f} > {stats.threshold:.0f}): review")
        return ScreenResult(source=inp.source, label=label, probabilities=p, model_id=handle.card.id,
                            model_sha256=handle.card.sha256, heatmap=heat, measurements=self.measurements(inp),
                            uncertain=uncertain, reasons=reasons, ood_score=score, scope=scope,
                            second_opinion=opinion, disagreement=disagreement)

    @staticmethod
    def _second_opinion(inp: EcgInput, gate: RecordGate) -> SecondOpinion | None:
        try:
            return second_opinion(inp.record, gate)  # type: ignore[arg-type]
        except VitascopeError:
            raise
        except Exception as e:  # the second opinion is an aid; its failure must not lose the model's answer
            log.warning("%s: second opinion failed (%s)", inp.source, e)
            return None

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
        """Read and screen files in batches; unreadable or refused inputs are returned as (path, message), the rest
        go on."""
        paths = list(paths)
        results: list[ScreenResult] = []
        errors: list[tuple[str, str]] = []
        pending: list[EcgInput] = []

        def flush() -> None:
            for inp, r in zip(pending, self._screen(pending), strict=True):
                if isinstance(r, VitascopeError):
                    errors.append((inp.source, str(r)))
                else:
                    results.append(r)
            pending.clear()

        for i, path in enumerate(paths):
            if cancel is not None and cancel.cancelled:
                break
            try:
                pending.extend(self.read(path))
            except VitascopeError as e:
                errors.append((str(path), str(e)))
            if len(pending) >= batch:
                flush()
            if progress is not None:
                progress(i + 1, len(paths))
        if pending:
            flush()
        return results, errors

    def close(self) -> None:
        self._model.forget()


def _upsample(rel: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    up = cv2.resize(np.asarray(rel, dtype=np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(up, 0.0, 1.0)
