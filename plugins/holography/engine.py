"""Qt-free live pipeline of the holography plug-in: per frame z by the chosen autofocus method (optionally smoothed,
or a manual z), refocus at that z → amplitude + phase, stage timings; model choice by card optics; recording."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import BadInput, ModelError, VitascopeError
from app.core.frames import Frame, FrameSource
from app.core.plugin_api import Host

from .autofocus import METHODS, TASK, Autofocus, card_mismatch, select_model
from .background import NO_BACKGROUND_NOTE, SELF_BACKGROUND
from .optics import Optics, preset
from .reconstruct import Reconstructor
from .tracking import ZTracker
from .unwrap import unwrap_phase

log = logging.getLogger(__name__)

DEFAULT_PRESET = "dhm-offaxis-10x"
DEFAULT_METHOD = "auto"
ENGINE_METHODS = ("auto",) + METHODS  # "auto": the method measured best for the stream's optics (auto.choose)


@dataclass
class HoloResult:
    """One processed frame. `z_m` is where it was refocused (smoothed or manual), `z_pred_m` the method's raw
    prediction (None under a manual z), `timings_ms` per stage ("focus", "reconstruct", "unwrap", "total");
    `focus_confidence`/`focus_in_range`/`focus_note` say how far to trust z (confidence.focus_confidence)."""

    index: int
    timestamp: float
    amplitude: np.ndarray
    phase: np.ndarray
    unwrapped: bool
    z_m: float
    z_pred_m: float | None
    z_true_m: float | None
    method: str
    model: str | None
    timings_ms: dict[str, float]
    pixel_size_m: float
    spread_m: float | None = None
    notes: tuple[str, ...] = ()
    sideband: str | None = None  # off-axis: the sideband used as the object wave ("+1"/"-1"), None in-line
    background: str = "none"  # "recorded" hologram, "frame" (off-axis field estimated from the frame) or "none"
    focus_confidence: float | None = None  # 0–1 from the sharpness curve over the z range (None: vit, manual z)
    focus_in_range: bool | None = None  # False: no focus in the z range (best plane on its edge, ...)
    focus_note: str = ""  # one line on the focus: "clear focus (…)", "uncertain focus …", "no focus in range: …"


@dataclass(frozen=True)
class FocusPlan:
    """What the engine will do for the current stream: the requested and effective method, the model card chosen
    (None for sweep/manual), and notes for the user (why sweep, optics mismatch)."""

    requested: str
    method: str
    model: str | None
    notes: tuple[str, ...] = ()
    card: Any = field(default=None, compare=False, repr=False)
    reason: str = ""  # "auto": which method and why, one line


def plan_focus(cards: list[Any], optics: Optics, method: str, wanted: str | None = None,
               has_background: bool = True) -> FocusPlan:
    """Choose the model for `optics`: `wanted` (a model id) when given and installed, else the card whose optics
    match (autofocus.select_model). Methods needing a model fall back to `sweep` with a note saying why; "auto"
    takes the method the model's card measured best (auto.choose) and says why in `reason`."""
    if method not in ENGINE_METHODS:
        raise BadInput(f"autofocus method must be one of {', '.join(ENGINE_METHODS)}, got {method!r}")
    if method == "sweep":
        return FocusPlan(method, "sweep", None)
    if method == "auto":
        return _plan_auto(cards, optics, wanted, has_background)
    notes: list[str] = []
    card = None
    if wanted:
        card = next((c for c in cards if c.id == wanted and c.task == TASK), None)
        if card is None:
            notes.append(f"Model {wanted!r} is not installed; choosing one by optics.")
        else:
            try:
                diff = card_mismatch(card, optics)
            except ModelError as e:
                diff = [str(e)]
            if diff:
                notes.append(f"The stream's optics differ from model {card.id}'s card: {'; '.join(diff)}. "
                             "Its z predictions may be wrong; calibrate a model for this microscope.")
    if card is None:
        card, reasons = select_model(cards, optics)
        if card is None:
            why = "; ".join(reasons[:3]) + (" …" if len(reasons) > 3 else "")
            notes.append(f"No installed autofocus model matches this stream's optics ({why}); using sweep.")
            return FocusPlan(method, "sweep", None, tuple(notes))
    return FocusPlan(method, method, card.id, tuple(notes), card)


def _plan_auto(cards: list[Any], optics: Optics, wanted: str | None, has_background: bool) -> FocusPlan:
    from .auto import choose

    card = next((c for c in cards if wanted and c.id == wanted and c.task == TASK), None)
    why = ""
    if card is None:
        card, reasons = select_model(cards, optics)
        if card is None:
            why = "no installed autofocus model matches these optics (" + "; ".join(reasons[:2]) + ")"
    method, reason = choose(card, has_background, why)
    return FocusPlan("auto", method, card.id if card is not None else None, (), card, reason)


class HoloEngine:
    """Live DHM engine. Configure it from the UI thread (`set_method`, `set_model`, `smoothing`, `set_manual_z`,
    `unwrap`, `set_preset`/`set_optics`), `attach(source)` before streaming it, then `process(frame)` runs on the
    stream's worker thread. Notices go to the host only from the calling thread of the setters."""

    def __init__(self, host: Host, method: str = DEFAULT_METHOD, preset_name: str = DEFAULT_PRESET) -> None:
        self.host = host
        self._lock = threading.RLock()
        self.preset_name: str | None = preset_name
        self.optics: Optics = preset(preset_name).optics
        self.method = method if method in ENGINE_METHODS else DEFAULT_METHOD
        self.model_id: str | None = None  # None = choose by optics
        self.smoothing = True
        self.unwrap = False
        self.manual_z_m: float | None = None
        self.n_crops = 5
        self.tracker = ZTracker()
        self.stream_optics: Optics = self.optics
        self.background: np.ndarray | None = None
        self.plan = FocusPlan(self.method, self.method, None)
        self.recorder: Any = None  # plugins.holography.recorder.Recorder while recording
        self._attached = False  # a stream was attached (its background, or lack of one, is known)
        self.flip_z = False  # the user's "other sideband" switch, on top of the stream's/model's sideband
        self.sideband_info: tuple[str | None, str] = (None, "")  # (sideband in use, where it comes from)
        self._rec: Reconstructor | None = None
        self._rec_key: tuple = ()
        self._af: Autofocus | None = None
        self._handles: dict[str, Any] = {}
        self._notified: set[str] = set()
        self._failed_models: dict[str, str] = {}
        host.on_models_changed(self._models_changed)
        self.replan()

    # configuration (UI thread) -----------------------------------------------------------------------------
    def set_method(self, method: str) -> FocusPlan:
        if method not in ENGINE_METHODS:
            raise BadInput(f"autofocus method must be one of {', '.join(ENGINE_METHODS)}, got {method!r}")
        self.method = method
        self.tracker.reset()
        return self.replan()

    def set_model(self, model_id: str | None) -> FocusPlan:
        """A model id, or None to choose by the stream's optics."""
        self.model_id = model_id or None
        self._failed_models.pop(model_id or "", None)
        return self.replan()

    def set_manual_z(self, z_m: float | None) -> None:
        """Refocus every frame at `z_m` (metres) instead of the predicted z; None returns to autofocus."""
        if z_m is not None and not math.isfinite(z_m):
            raise BadInput(f"manual z must be a finite number of metres, got {z_m!r}")
        self.manual_z_m = None if z_m is None else float(z_m)
        if z_m is None:
            self.tracker.reset()

    def set_smoothing(self, on: bool) -> None:
        self.smoothing = bool(on)
        self.tracker.reset()

    def set_flip_z(self, on: bool) -> None:
        """Use the other sideband as the object wave (z mirrored) from the next frame on."""
        with self._lock:
            self.flip_z = bool(on)
            self.tracker.reset()

    def set_preset(self, name: str) -> Optics:
        self.preset_name = name
        return self.set_optics(preset(name).optics, keep_preset=True)

    def set_optics(self, optics: Optics, keep_preset: bool = False) -> Optics:
        """Optics used for sources that do not carry their own (image files, video, cameras)."""
        self.optics = optics
        if not keep_preset:
            self.preset_name = optics.name if optics.name in _preset_names() else None
        return optics

    def available_models(self) -> list[str]:
        return [c.id for c in self.host.models(TASK)]

    def _models_changed(self) -> None:
        with self._lock:
            self._handles.clear()
            self._failed_models.clear()
        self.replan()

    def replan(self) -> FocusPlan:
        """Re-choose the model and effective method for the current stream optics; notify new notes."""
        plan = plan_focus(self.host.models(TASK), self.stream_optics, self.method, self.model_id,
                          self.background is not None)
        if self._attached and self.stream_optics.mode == "offaxis" and self.background is None:
            plan = replace(plan, notes=plan.notes + (NO_BACKGROUND_NOTE,))
        with self._lock:
            self.plan = plan
            self._af = None
        for note in plan.notes:
            if note not in self._notified:
                self._notified.add(note)
                self.host.notify(note, "warning")
        return plan

    # sources -----------------------------------------------------------------------------------------------
    def demo_source(self, fps: float = 20.0, speed_m_s: float = 5e-6, size: int = 512, seed: int = 0,
                    paced: bool = True) -> FrameSource:
        """Simulated DHM camera of the `dhm-offaxis-10x` preset whose z drifts at `speed_m_s`."""
        from .sources import SimulatedCamera

        return SimulatedCamera(DEFAULT_PRESET, size=size, fps=fps, speed_m_s=speed_m_s, seed=seed, paced=paced)

    def open_source(self, spec: str | int | Path, fps: float | None = None, loop: bool = True) -> FrameSource:
        """A file, folder, 'camera:N' or 'sim'; files without optics of their own use the engine's optics."""
        from .sources import open_source

        if isinstance(spec, str) and spec.startswith("sim"):
            return open_source(spec, fps=fps)
        optics: Any = self.optics
        p = Path(str(spec))
        if p.suffix.lower() in (".h5", ".hdf5", ".hdf"):
            optics = None  # the file's own attributes win; BadInput names what is missing
        return open_source(spec, optics, fps=fps, loop=loop)

    def attach(self, source: FrameSource) -> FocusPlan:
        """Prepare for a new stream: its optics and background, a fresh reconstructor and tracker, the model."""
        optics = getattr(source, "optics", None)
        with self._lock:
            self.stream_optics = optics if isinstance(optics, Optics) else self.optics
            self.background = getattr(source, "background", None)
            self._attached = True
            self._rec = None
            self.tracker.reset()
        return self.replan()

    # per frame (worker thread) -----------------------------------------------------------------------------
    def _reconstructor(self, optics: Optics, frame: np.ndarray | None = None) -> Reconstructor:
        rec = self._rec
        key = (optics, self.flip_z, self.plan.model)
        if rec is None or self._rec_key != key:
            with self._lock:
                if optics != self.stream_optics:  # the frames disagree with the source: trust the frames
                    self.stream_optics = optics
                    self.background = None
                eff = self._effective_optics(optics, frame)
                rec = Reconstructor(eff, self.background, tune_fft=True,
                                    self_background=SELF_BACKGROUND if self.background is None else None)
                self._rec, self._af, self._rec_key = rec, None, key
        return rec

    def _effective_optics(self, optics: Optics, frame: np.ndarray | None) -> Optics:
        """The stream's optics with its sideband settled: stated, the calibrated model's, "auto" from this frame,
        then the user's flip; recorded in sideband_info for the UI."""
        from .sideband import resolve_auto, with_model_sideband

        if optics.mode != "offaxis":
            self.sideband_info = (None, "in-line: no sideband")
            return optics
        eff, src = with_model_sideband(optics, self.plan.card)
        if eff.sideband == "auto" and frame is not None:
            eff, src = resolve_auto(eff, [frame], self.background)
        if self.flip_z:
            eff = eff.flipped()
            src = f"sideband {eff.sideband}: flipped by the user ({src})"
        self.sideband_info = (eff.sideband or "+1", src)
        return eff

    def _autofocus(self, rec: Reconstructor) -> tuple[Autofocus, FocusPlan, tuple[str, ...]]:
        with self._lock:
            plan, af = self.plan, self._af
            notes: tuple[str, ...] = ()
            if af is not None and af.reconstructor is rec:
                return af, plan, notes
            handle = None
            method = plan.method
            if plan.model is not None and plan.method != "sweep":
                handle = self._handles.get(plan.model)
                if handle is None and plan.model not in self._failed_models:
                    try:
                        handle = self.host.open_model(plan.model)
                        self._handles[plan.model] = handle
                    except VitascopeError as e:
                        self._failed_models[plan.model] = str(e)
                if handle is None:
                    method = "sweep"
                    notes = (f"Model {plan.model} could not be opened ({self._failed_models[plan.model]}); "
                             "using sweep.",)
                    plan = FocusPlan(plan.requested, "sweep", None, plan.notes + notes)
                    self.plan = plan
            af = Autofocus(rec, handle, method=method, n_crops=self.n_crops)
            self._af = af
            return af, plan, notes

    def process(self, frame: Frame) -> HoloResult:
        """Refocus one frame: z (method / smoothing / manual), reconstruction, phase; records it if recording."""
        t0 = time.perf_counter()
        optics = frame.meta.get("optics")
        rec = self._reconstructor(optics if isinstance(optics, Optics) else self.stream_optics, frame.data)
        timings: dict[str, float] = {}
        manual = self.manual_z_m
        z_pred = spread = conf = None
        if manual is not None:
            z, method, model = manual, "manual", None
            plan = self.plan
        else:
            af, plan, _ = self._autofocus(rec)
            fr = af.predict(frame.data)
            timings["focus"] = fr.ms
            z_pred, method, model, spread = fr.z_m, fr.method, plan.model if fr.method != "sweep" else None, \
                fr.spread_m
            conf = fr.confidence
            z = self.tracker.update(z_pred, frame.index) if self.smoothing else z_pred
        t = time.perf_counter()
        r = rec.reconstruct(frame.data, z)
        timings["reconstruct"] = (time.perf_counter() - t) * 1e3
        phase, unwrapped = r.phase, False
        if self.unwrap and phase is not None:
            t = time.perf_counter()
            phase, unwrapped = unwrap_phase(phase), True
            timings["unwrap"] = (time.perf_counter() - t) * 1e3
        timings["total"] = (time.perf_counter() - t0) * 1e3
        z_true = frame.meta.get("z_true_m")
        result = HoloResult(frame.index, frame.timestamp, r.amplitude, phase, unwrapped, float(z),
                            z_pred, None if z_true is None else float(z_true), method, model, timings,
                            r.pixel_size_m, spread, plan.notes, self.sideband_info[0], rec.background_source,
                            None if conf is None else conf.confidence, None if conf is None else conf.in_range,
                            "" if conf is None else conf.note)
        recorder = self.recorder
        if recorder is not None and recorder.running:
            recorder.add(frame.data, index=frame.index, timestamp=frame.timestamp, z_m=result.z_m,
                         z_pred_m=z_pred, z_true_m=result.z_true_m, method=method)
        return result

    # recording ---------------------------------------------------------------------------------------------
    def start_recording(self, path: str | Path, on_error: Any = None, **kw: Any) -> Any:
        """Record every processed frame of the current stream to HDF5 (see recorder.Recorder)."""
        from .recorder import Recorder

        self.stop_recording()
        attrs = {"model": self.plan.model or "", "requested_method": self.method}
        if self.preset_name:
            attrs["preset"] = self.preset_name
        optics = self._rec.optics if self._rec is not None else self.stream_optics  # sideband settled
        self.recorder = Recorder(path, optics, background=self.background, attrs=attrs,
                                 on_error=on_error, **kw)
        return self.recorder

    def stop_recording(self) -> Any:
        rec, self.recorder = self.recorder, None
        if rec is not None:
            rec.stop()
        return rec

    def close(self) -> None:
        self.stop_recording()
        with self._lock:
            self._handles.clear()
            self._rec = self._af = None


def _preset_names() -> tuple[str, ...]:
    from .optics import PRESETS

    return tuple(PRESETS)
