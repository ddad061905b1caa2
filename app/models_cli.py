"""`vitascope models list|verify|install` and `vitascope selftest`: the model zoo from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time

from app.core.errors import ModelError
from app.core.zoo import Zoo, golden_check, open_folder


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    m = subparsers.add_parser("models", help="the model zoo")
    sub = m.add_subparsers(dest="models_cmd", required=True)
    ls = sub.add_parser("list", help="installed models")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=list_cmd)
    vf = sub.add_parser("verify", help="check every card and checksum")
    vf.set_defaults(func=verify_cmd)
    ins = sub.add_parser("install", help="install a model folder (card.toml + model.onnx)")
    ins.add_argument("folder")
    ins.add_argument("--replace", action="store_true", help="replace an installed model with the same id")
    ins.set_defaults(func=install_cmd)
    st = subparsers.add_parser("selftest", help="verify every model and run it on its golden input")
    st.set_defaults(func=selftest_cmd)


def list_cmd(args: argparse.Namespace) -> int:
    entries = Zoo().entries()
    if args.json:
        rows = []
        for e in entries:
            row = {"id": e.id, "folder": str(e.folder), "builtin": e.builtin, "error": e.error}
            if e.card:
                row.update(task=e.card.task, version=e.card.version, bytes=e.card.bytes, params=e.card.params,
                           sha256=e.card.sha256, metrics=e.card.metrics)
            rows.append(row)
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not entries:
        print("no models installed")
    for e in entries:
        if e.card:
            metric = ", ".join(f"{m['name']}={m['value']:.4g}" for m in e.card.metrics[:2]
                               if isinstance(m.get("value"), (int, float)))
            print(f"{e.id:28s} {e.card.task:20s} {e.card.bytes / 1e6:6.2f} MB  {metric}")
        else:
            print(f"{e.id:28s} BROKEN: {e.error}")
    return 0


def verify_cmd(args: argparse.Namespace) -> int:
    zoo = Zoo()
    bad = 0
    for e in zoo.entries():
        try:
            zoo.verify(e.id)
            print(f"ok      {e.id}")
        except ModelError as err:
            bad += 1
            print(f"FAILED  {e.id}: {err}")
    return 1 if bad else 0


def install_cmd(args: argparse.Namespace) -> int:
    card = Zoo().install(args.folder, replace=args.replace)
    print(f"installed {card.id}")
    return 0


def selftest_cmd(args: argparse.Namespace) -> int:
    entries = Zoo().entries()
    print(f"{'model':28s} {'checksum':9s} {'golden':9s} {'max diff':>9s} {'ms':>7s}")
    failures = 0
    if not entries:
        print("no models installed")
        return 1
    for e in entries:
        status, golden, diff, ms = "ok", "-", "-", "-"
        try:
            if e.card is None:
                raise ModelError(e.error or "unreadable card")
            t0 = time.perf_counter()
            handle = open_folder(e.folder)
            golden_diff = golden_check(handle)
            ms = f"{(time.perf_counter() - t0) * 1e3:.0f}"
            golden, diff = "ok", f"{golden_diff:.1e}"
        except ModelError as err:
            failures += 1
            status = "FAILED"
            print(f"{e.id:28s} {status:9s} {golden:9s} {diff:>9s} {ms:>7s}  {err}")
            continue
        print(f"{e.id:28s} {status:9s} {golden:9s} {diff:>9s} {ms:>7s}")
    print(f"{len(entries) - failures}/{len(entries)} models passed")
    return 1 if failures else 0
