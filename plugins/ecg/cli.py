"""`vitascope ecg simulate | render | screen | deid`: bad input raises BadInput (exit 2, one line on stderr).
`screen` goes on past unreadable or refused inputs (one stderr line each, exit 1; exit 2 when none could be
screened); `--json` prints only JSON: [{"file", "label", "probabilities", "model", "uncertain", "reasons",
"ood_score", "scope", "second_opinion", "disagreement", "measurements"}]."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from app.core.errors import BadInput

from .types import CLASSES, ScreenResult


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ecg", help="ECG screening (simulate, render, screen, de-identify)")
    sub = p.add_subparsers(dest="ecg_cmd", required=True)

    s = sub.add_parser("simulate", help="a synthetic 12-lead record (WFDB) of a class")
    s.add_argument("--label", choices=CLASSES, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="output record path without extension (writes .hea + .dat)")
    s.set_defaults(func=simulate_cmd)

    r = sub.add_parser("render", help="an ECG record (WFDB .hea, DICOM) rendered as a printout image")
    r.add_argument("record", help="WFDB .hea/.dat or DICOM waveform file")
    r.add_argument("--out", required=True, help="output image (.png or .jpg)")
    r.add_argument("--layout", default="3x4+II", help="3x4+II, 3x4, 6x2, 12x1 or rhythm (default 3x4+II)")
    r.add_argument("--style", default="clean", choices=("clean", "scanned", "photographed"))
    r.add_argument("--dpi", type=float, default=150.0)
    r.add_argument("--grid", default="red", help="red, pink, blue, green, bw or none")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=render_cmd)

    c = sub.add_parser("screen", help="screen ECG images, DICOM and WFDB records (files or folders)")
    c.add_argument("inputs", nargs="+", help="files or folders")
    c.add_argument("--model", default=None, help="installed model id or model folder (default: first installed)")
    c.add_argument("--json", action="store_true", help="print only JSON")
    c.add_argument("--batch", type=int, default=8)
    c.set_defaults(func=screen_cmd)

    d = sub.add_parser("deid", help="export a DICOM file de-identified (PS3.15 basic profile)")
    d.add_argument("src")
    d.add_argument("dst")
    d.set_defaults(func=deid_cmd)


def simulate_cmd(args: argparse.Namespace) -> int:
    import numpy as np
    import wfdb

    from .waveform import simulate

    rec = simulate(args.label, args.seed)
    out = Path(args.out)
    if out.suffix in (".hea", ".dat"):
        out = out.with_suffix("")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", out.name or ""):
        raise BadInput(f"--out {args.out!r}: a WFDB record name may hold only letters, digits, '-' and '_'")
    if out.exists() and out.is_dir():
        raise BadInput(f"{out}: is a folder; give a record path such as {out}/rec")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        wfdb.wrsamp(out.name, fs=float(rec.fs), units=["mV"] * len(rec.leads), sig_name=list(rec.leads),
                    p_signal=np.asarray(rec.signals, dtype=np.float64).T, fmt=["16"] * len(rec.leads),
                    comments=[f"label: {args.label}", f"seed: {args.seed}"], write_dir=str(out.parent or "."))
    except OSError as e:
        raise BadInput(f"{out}: cannot write the record ({e.strerror or e})") from None
    print(f"{out}.hea: {args.label}, {len(rec.leads)} leads, {rec.fs:g} Hz, {rec.duration_s:g} s")
    return 0


def render_cmd(args: argparse.Namespace) -> int:
    import cv2

    from .readers import read_inputs
    from .render import render

    out = Path(args.out)
    ext = out.suffix.lower()
    if ext not in (".png", ".jpg", ".jpeg"):
        raise BadInput(f"{out}: the output must be a .png or .jpg image, got {ext or 'no suffix'}")
    items = [i for i in read_inputs(args.record) if i.record is not None]
    if not items:
        raise BadInput(f"{args.record}: holds no waveform to render (an image is already rendered)")
    rec = items[0].record
    image = render(rec, layout=args.layout, style=args.style, dpi=args.dpi, seed=args.seed, grid=args.grid)
    ok, buf = cv2.imencode(ext, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise BadInput(f"{out}: the image could not be encoded as {ext}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(buf.tobytes())
    except OSError as e:
        raise BadInput(f"{out}: cannot write ({e.strerror or e})") from None
    layout = args.layout if len(rec.leads) >= 12 else "rhythm strips (fewer than 12 leads)"
    print(f"{out}: {image.shape[1]}x{image.shape[0]} px, {layout}, {args.dpi:g} dpi")
    return 0


def _engine(model: str | None):
    from app.core.host import HeadlessHost

    from .engine import TASK, EcgEngine

    host = HeadlessHost()
    engine = EcgEngine(host)
    engine.use_handle(host.zoo.open(host.zoo.resolve(model, TASK)))
    return engine


def _expand(inputs: list[str]) -> list[Path]:
    from .readers import iter_folder

    files: list[Path] = []
    for name in inputs:
        p = Path(name)
        files.extend(iter_folder(p) if p.is_dir() else [p])
    return files


def _message(path: str, message: str) -> str:
    """One line naming the file once (reader messages already start with the path)."""
    message = " ".join(str(message).split())
    return message if message.startswith(path) else f"{path}: {message}"


def result_row(r: ScreenResult) -> dict[str, Any]:
    """The JSON form of one screening result."""
    return {"file": r.source, "label": r.label, "probabilities": {k: round(v, 6) for k, v in r.probabilities.items()},
            "model": r.model_id, "uncertain": r.uncertain, "reasons": list(r.reasons),
            "ood_score": None if r.ood_score is None else round(r.ood_score, 3), "scope": r.scope,
            "second_opinion": r.second_opinion.to_json() if r.second_opinion is not None else None,
            "disagreement": r.disagreement,
            "measurements": {k: round(float(v), 3) for k, v in r.measurements.items()
                             if isinstance(v, (int, float))}}


def result_line(r: ScreenResult) -> str:
    top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.probabilities.items(), key=lambda kv: -kv[1])[:2])
    line = f"{r.source}: {r.label}  ({top})"
    if r.scope != "12-lead":
        line += f"  [{r.scope}]"
    if r.measurements:
        line += "  " + " ".join(f"{k} {v:.0f}" for k, v in r.measurements.items() if k in ("HR", "QRS", "QTc"))
    if r.second_opinion is not None and r.second_opinion.label:
        line += f"  | criteria: {r.second_opinion.label}"
    if r.uncertain:
        line += "  UNCERTAIN: " + "; ".join(r.reasons or ["review"])
    return line


def screen_cmd(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise BadInput(f"--batch must be at least 1, got {args.batch}")
    engine = _engine(args.model)
    files = _expand(args.inputs)
    if not files:
        raise BadInput(f"no ECG files found in {', '.join(args.inputs)}")
    t0 = time.perf_counter()
    results, errors = engine.screen_paths(files, batch=args.batch)
    seconds = time.perf_counter() - t0
    if not results:
        if len(errors) == 1:
            raise BadInput(_message(*errors[0]))
        first = _message(*errors[0]) if errors else "nothing to screen"
        raise BadInput(f"none of the {len(errors)} inputs could be screened (first: {first})")
    for path, message in errors:
        sys.stderr.write(f"vitascope: skipped {_message(path, message)}\n")
    if args.json:
        json.dump([result_row(r) for r in results], sys.stdout)
        sys.stdout.write("\n")
    else:
        for r in results:
            print(result_line(r))
        n_unc = sum(r.uncertain for r in results)
        print(f"# {len(results)} ECGs screened by {results[0].model_id} in {seconds:.2f} s "
              f"({len(results) / max(seconds, 1e-9):.1f}/s), {n_unc} uncertain, {len(errors)} unreadable or refused")
    return 1 if errors else 0


def deid_cmd(args: argparse.Namespace) -> int:
    from .deid import deidentify_dicom

    report = deidentify_dicom(args.src, args.dst)
    print(f"{args.dst}: de-identified ({report.profile}, {report.table_edition}): {report.summary()}")
    return 0
