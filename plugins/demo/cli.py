"""`vitascope demo classify IMAGE... [--json]`: the demo model from the command line."""

from __future__ import annotations

import argparse
import json
import sys

from app.core.errors import BadInput
from app.core.host import HeadlessHost
from app.core.io.images import read_image

from .engine import TASK, DemoEngine

MIN_SIDE = 8  # pixels: smaller images hold no shape to classify


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="the demo plug-in (generated shapes)")
    sub = p.add_subparsers(dest="demo_cmd", required=True)
    c = sub.add_parser("classify", help="classify images with the demo model")
    c.add_argument("images", nargs="+")
    c.add_argument("--model", default=None, help="model id or model folder (default: the first installed "
                   "demo.shapes model); one that cannot be used is an error")
    c.add_argument("--json", action="store_true", help="machine-readable results on stdout")
    c.set_defaults(func=classify_cmd)


def classify_cmd(args: argparse.Namespace) -> int:
    """Classify every readable image; each unreadable one gets one stderr line (its message names the file).
    Exit 0 when all were classified, 1 when some failed (after the others' results), 2 when none could be (as
    `ecg screen`). A --model that cannot be used is an error before any image is read, never replaced."""
    host = HeadlessHost()
    engine = DemoEngine(host, None if args.model is None else str(host.zoo.resolve(args.model, TASK)))
    engine.model  # noqa: B018 - open (and verify) the chosen model first: a bad --model fails here
    rows, failed = [], 0
    for path in args.images:
        try:
            img = read_image(path)
            if min(img.shape[:2]) < MIN_SIDE:
                raise BadInput(f"{path}: {img.shape[1]}x{img.shape[0]} pixels, too small to classify "
                               f"(at least {MIN_SIDE}x{MIN_SIDE})")
            r = engine.classify(img)
        except BadInput as e:
            failed += 1
            print(f"vitascope: {e}", file=sys.stderr)
            continue
        rows.append({"file": path, "label": r.label, "probabilities": r.probabilities, "model": r.model})
    if args.json and rows:  # nothing at all on stdout when no image could be read
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for row in rows:
            print(f"{row['file']}\t{row['label']}\t{row['probabilities'][row['label']]:.3f}")
    return 0 if not failed else 1 if rows else 2
