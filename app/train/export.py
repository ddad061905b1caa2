"""torch → ONNX export of a model folder (model.onnx single file, golden.npz, card.toml), checked by onnx.checker
and an onnxruntime-vs-torch parity test at several batch and image sizes before anything is declared done."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from app.core import runtime
from app.core.card import GOLDEN_FILE, MODEL_FILE, ModelCard, TensorSpec, parse_card, sha256_file, write_card
from app.core.errors import JobError

from .objectives import get_objective, objective_names

log = logging.getLogger(__name__)
PARITY_ATOL = 1e-4
_CARD_KEYS = ("id", "task", "version", "license", "description", "arch", "preprocess", "labels", "optics",
              "metrics", "latency", "provenance")


def _alt_sizes(h: int, w: int, multiple: int) -> list[tuple[int, int]]:
    """The native size plus two others (larger square and a non-square one), multiples of `multiple`."""
    up = ((h * 3 // 2 + multiple - 1) // multiple) * multiple
    other = (h, max(multiple, ((w * 3 // 4) // multiple) * multiple))
    out = [(h, w), (up, up), other]
    return list(dict.fromkeys(out))


def parity_check(model: nn.Module, onnx_path: Path, input_name: str, example: torch.Tensor,
                 batch_sizes: Sequence[int], image_sizes: Sequence[tuple[int, int]],
                 atol: float = PARITY_ATOL, seed: int = 0) -> float:
    """Run ORT and torch on the same random inputs for every batch × image size; return the worst max abs diff,
    raise JobError if any exceeds `atol`."""
    sess = runtime.create_session(onnx_path, threads=2, warmup=False)
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    c = example.shape[1]
    for b in batch_sizes:
        for h, w in image_sizes:
            x = torch.rand(b, c, h, w, generator=g) * 2 - 1
            with torch.no_grad():
                out = model(x)
            refs = [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]
            gots = sess.run(None, {input_name: x.numpy()})
            diff = 0.0
            for got, ref in zip(gots, refs, strict=True):
                if got.shape != ref.shape:
                    raise JobError(f"{onnx_path}: ONNX output shape {got.shape} != torch {ref.shape} at input "
                                   f"{tuple(x.shape)}")
                diff = max(diff, float(np.max(np.abs(got.astype(np.float64) - ref))))
            log.info("parity batch %d, %dx%d: max abs diff %.3g", b, h, w, diff)
            if not np.isfinite(diff) or diff > atol:
                raise JobError(f"{onnx_path}: ONNX differs from torch by {diff:.3g} (> {atol:g}) at input "
                               f"{tuple(x.shape)}")
            worst = max(worst, diff)
    return worst


def measure_latency(onnx_path: Path, input_name: str, shape: Sequence[int], runs: int = 50,
                    warmup: int = 5) -> dict[str, Any]:
    """Median/p90 ms of onnxruntime at the given (batch 1) shape with 2 intra-op threads."""
    sess = runtime.create_session(onnx_path, threads=2, warmup=False)
    x = np.random.default_rng(0).uniform(-1, 1, size=tuple(shape)).astype(np.float32)
    times = runtime.time_runs(sess, {input_name: x}, runs, warmup)
    import onnxruntime as ort

    times.sort()
    return {"ms": round(statistics.median(times), 4), "p90_ms": round(times[int(0.9 * (len(times) - 1))], 4),
            "batch": int(shape[0]), "threads": 2, "runs": runs, "input": list(int(s) for s in shape),
            "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider",
            "machine": f"{platform.platform()} ({platform.machine()}, {os.cpu_count()} cpus)"}


def _sanitize(value: Any) -> Any:
    """Drop None (TOML has no null) and turn tuples/numpy scalars into plain lists/numbers."""
    if isinstance(value, dict):
        return {str(k): _sanitize(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_sanitize(v) for v in value if v is not None]
    if isinstance(value, np.generic):
        return value.item()
    return value


@contextlib.contextmanager
def quiet_exporter(*ignore: type[Warning]):
    """The ONNX exporters kept quiet: their loggers at ERROR, their prints sent to stderr (stdout stays clean for
    JSON-lines events and --json output), and warnings of the `ignore` types (default: all) dropped."""
    names = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._dynamo")
    levels = {n: logging.getLogger(n).level for n in names}
    try:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            for category in ignore or (Warning,):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)


@contextlib.contextmanager
def export_errors(what: str, out_dir: Path, target: str):
    """Turn an exporter failure into one JobError line: OS errors name `target` in `out_dir`, anything else
    names `what` and the exception's first line."""
    try:
        yield
    except JobError:
        raise
    except OSError as e:
        raise JobError(f"{out_dir}: cannot write {target} ({e.strerror or e})") from None
    except Exception as e:
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:200]
        raise JobError(f"{what} failed: {e.__class__.__name__}: {first}") from e


def _onnx_export(model: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str | list[str],
                 dynamic_hw: bool, opset: int | None) -> None:
    batch = torch.export.Dim("batch")
    dims: dict[int, Any] = {0: batch}
    if dynamic_hw:
        dims.update({2: torch.export.Dim("height"), 3: torch.export.Dim("width")})
    # quieten the exporter's progress prints, the optimiser's INFO chatter and the "torchvision is not installed"
    # warnings
    with quiet_exporter(FutureWarning, DeprecationWarning):
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=(dims,),
                                    input_names=[input_name],
                                    output_names=[output_name] if isinstance(output_name, str) else output_name,
                                    opset_version=opset, external_data=False, verbose=False)
        if program is None:
            raise JobError("torch.onnx.export returned no program")
        program.save(str(path), external_data=False)


def export_onnx(model: nn.Module, example_input: torch.Tensor, out_dir: str | Path, card_fields: dict[str, Any],
                *, input_name: str = "image", output_name: str | list[str] | None = None,
                dynamic_hw: bool | None = None, opset: int | None = None, atol: float = PARITY_ATOL,
                batch_sizes: Sequence[int] = (1, 3),
                image_sizes: Sequence[tuple[int, int]] | None = None, latency_runs: int = 50) -> ModelCard:
    """Export `model` to out_dir/model.onnx (one file, free batch and, for ViTs, free height/width; a model that
    returns a tuple gets one named output per element, `output_name` then a list), check it
    (onnx.checker + ORT parity ≤ atol at ≥ 2 batch and ≥ 2 image sizes), write golden.npz and card.toml and
    return the card. `card_fields` holds id, task, labels, preprocess, metrics, provenance... (docs/formats.md)."""
    import onnx

    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise JobError(f"{out_dir}: cannot create the model folder ({e.strerror or e})") from None
    unknown = set(card_fields) - set(_CARD_KEYS) - {"extra"}
    if unknown:
        raise JobError(f"export: unknown card field(s) {', '.join(sorted(unknown))}")
    model = model.eval()
    if dynamic_hw is None:
        dynamic_hw = hasattr(model, "dynamic_img_size")
    example = example_input.detach().float()
    if example.ndim != 4:
        raise JobError(f"export: example input must be NCHW, got shape {tuple(example.shape)}")
    if example.shape[0] < 2:  # batch 1 examples can freeze the batch dim in torch.onnx.export
        example = example.repeat(2, 1, 1, 1)
    cfg = getattr(model, "config", None)
    if not output_name:
        head = getattr(cfg, "head", "classification")
        output_name = get_objective(head).output_name if head in objective_names() else "output"
    output_names = [output_name] if isinstance(output_name, str) else list(output_name)
    _, c, h, w = (int(s) for s in example.shape)
    multiple = int(getattr(cfg, "patch", 1))

    onnx_path = out_dir / MODEL_FILE
    sidecar = out_dir / (MODEL_FILE + ".data")
    tmp_path = out_dir / (MODEL_FILE + ".tmp")
    previous = getattr(model, "dynamic_img_size", None)
    t0 = time.perf_counter()
    try:
        with export_errors("ONNX export", out_dir, "the model"):
            if previous is not None:
                model.dynamic_img_size = bool(dynamic_hw)
            _onnx_export(model, example, tmp_path, input_name, output_name, dynamic_hw, opset)
            if Path(str(tmp_path) + ".data").exists():
                raise JobError(f"{tmp_path}: the exporter wrote an external-data sidecar; expected a single file")
            onnx.checker.check_model(str(tmp_path), full_check=True)
            os.replace(tmp_path, onnx_path)
            sidecar.unlink(missing_ok=True)
            log.info("exported %s in %.1f s", onnx_path, time.perf_counter() - t0)

            sizes = list(image_sizes) if image_sizes else (_alt_sizes(h, w, multiple) if dynamic_hw else [(h, w)])
            worst = parity_check(model, onnx_path, input_name, example, batch_sizes, sizes, atol)
    finally:
        if previous is not None:
            model.dynamic_img_size = previous
        Path(tmp_path).unlink(missing_ok=True)

    opset_used = max((o.version for o in onnx.load(str(onnx_path), load_external_data=False).opset_import
                      if o.domain in ("", "ai.onnx")), default=0)

    # golden: a deterministic input at the native size, batch 2, with the ORT output
    golden_in = np.random.default_rng(12345).uniform(-1, 1, size=(2, c, h, w)).astype(np.float32)
    sess = runtime.create_session(onnx_path, threads=2, warmup=False)
    golden_outs = sess.run(None, {input_name: golden_in})
    np.savez(out_dir / GOLDEN_FILE, input_0=golden_in, **{f"output_{i}": o for i, o in enumerate(golden_outs)})

    free = ["batch", c, "height" if dynamic_hw else h, "width" if dynamic_hw else w]
    fields = {k: _sanitize(v) for k, v in card_fields.items() if v is not None}
    extra = fields.pop("extra", {})
    latency = {**measure_latency(onnx_path, input_name, (1, c, h, w), runs=latency_runs),
               **fields.pop("latency", {})}
    arch = fields.pop("arch", None) or (cfg.to_dict() if hasattr(cfg, "to_dict") else {})
    if arch and "family" not in arch and cfg is not None:
        arch = {"family": type(model).__name__, **arch}
    data = {
        "id": fields.pop("id", out_dir.name), "task": fields.pop("task", "unknown"),
        "version": fields.pop("version", "0.1.0"), "license": fields.pop("license", "MIT"),
        "model": {"file": MODEL_FILE, "sha256": sha256_file(onnx_path), "bytes": onnx_path.stat().st_size,
                  "params": int(sum(p.numel() for p in model.parameters())), "opset": int(opset_used)},
        "inputs": [TensorSpec(input_name, tuple(free)).to_dict()],
        "outputs": [TensorSpec(name, ("batch", int(o.shape[1]))).to_dict()
                    for name, o in zip(output_names, golden_outs, strict=True)],
        "arch": arch, "latency": latency,
        "export": {"parity_max_abs_diff": worst, "parity_atol": atol, "torch": str(torch.__version__),
                   "onnx": onnx.__version__},
        **fields, **extra,
    }
    card = parse_card(_sanitize(data), str(out_dir / "card.toml"))
    write_card(out_dir, card)
    try:
        verify_folder(out_dir)
    except Exception as e:
        raise JobError(f"{out_dir}: exported folder fails the zoo check ({e})") from None
    log.info("card written: %s (parity %.2g, %.3f ms)", out_dir / "card.toml", worst, latency["ms"])
    return card


def verify_folder(out_dir: str | Path) -> float:
    """Open the folder like the app does (card, sha256, I/O) and run the golden check; return its max diff."""
    from app.core.zoo import golden_check, open_folder

    return golden_check(open_folder(Path(out_dir), threads=2))
