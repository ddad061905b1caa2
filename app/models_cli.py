"""`vitascope models list|verify|install` and `vitascope selftest`: the model zoo from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time

from app.core.errors import ModelError
from app.core.zoo import Zoo, ZooEntry, check_loads, golden_check, open_folder


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


def _checked(zoo: Zoo) -> list[tuple[ZooEntry, str | None]]:
    """Every entry with its problem (unreadable card, missing/short/tampered model.onnx) or None."""
    out = []
    for e in zoo.entries():
        try:
            zoo.verify(e.id) if e.card is not None else None
            out.append((e, e.error))
        except ModelError as err:
            out.append((e, str(err)))
    return out


def list_cmd(args: argparse.Namespace) -> int:
    """Installed models; broken ones (card unreadable, checksum or size wrong) are marked BROKEN with the reason.
    Listing succeeds (exit 0) either way: `models verify` is the check that fails."""
    checked = _checked(Zoo())
    if args.json:
        rows = []
        for e, error in checked:
            row = {"id": e.id, "folder": str(e.folder), "builtin": e.builtin, "error": error}
            if e.card:
                row.update(task=e.card.task, version=e.card.version, bytes=e.card.bytes, params=e.card.params,
                           sha256=e.card.sha256, metrics=e.card.metrics,
                           artifacts=[{"role": a.role, "file": a.file, "bytes": a.bytes} for a in e.card.artifacts])
            rows.append(row)
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not checked:
        print("no models installed")
    for e, error in checked:
        if e.card and not error:
            metric = ", ".join(f"{m['name']}={m['value']:.4g}" for m in e.card.metrics[:2]
                               if isinstance(m.get("value"), (int, float)))
            size = sum(a.bytes or 0 for a in e.card.artifacts)
            files = f"{len(e.card.artifacts)} files" if len(e.card.artifacts) > 1 else "1 file"
            print(f"{e.id:28s} {e.card.task:20s} {size / 1e6:6.2f} MB {files:8s} {metric}")
        else:
            print(f"{e.id:28s} BROKEN: {error}")
    return 0


def _failed(failures: list[str], total: int, what: str) -> None:
    """The one stderr line of a failed check; the CLI turns it into exit 2."""
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    raise ModelError(f"{len(failures)} of {total} models failed {what}: {failures[0]}{more}")


def verify_cmd(args: argparse.Namespace) -> int:
    """`ok ID` / `FAILED ID: reason` per model on stdout; any failure: exit 2 with one line on stderr."""
    checked = _checked(Zoo())
    failures = []
    for e, error in checked:
        if error:
            failures.append(f"{e.id}: {error}")
            print(f"FAILED  {e.id}: {error}")
        else:
            print(f"ok      {e.id}")
    sys.stdout.flush()
    if failures:
        _failed(failures, len(checked), "verification")
    return 0


def install_cmd(args: argparse.Namespace) -> int:
    card = Zoo().install(args.folder, replace=args.replace)
    print(f"installed {card.id}")
    return 0


def selftest_cmd(args: argparse.Namespace) -> int:
    entries = Zoo().entries()
    print(f"{'model':28s} {'checksum':9s} {'golden':9s} {'max diff':>9s} {'ms':>7s}")
    failures = 0
    if not entries:
        raise ModelError("no models installed (see `vitascope models install`)")
    problems = []
    for e in entries:
        status, golden, diff, ms = "ok", "-", "-", "-"
        try:
            if e.card is None:
                raise ModelError(e.error or "unreadable card")
            t0 = time.perf_counter()
            handle = open_folder(e.folder)
            if handle.session is None:  # no `model` artifact (e.g. a CLIP folder): checksums only, no golden run
                check_loads(e.folder, e.card)
                ms = f"{(time.perf_counter() - t0) * 1e3:.0f}"
            else:
                golden_diff = golden_check(handle)
                ms = f"{(time.perf_counter() - t0) * 1e3:.0f}"
                golden, diff = "ok", f"{golden_diff:.1e}"
        except ModelError as err:
            failures += 1
            status = "FAILED"
            problems.append(f"{e.id}: {err}")
            print(f"{e.id:28s} {status:9s} {golden:9s} {diff:>9s} {ms:>7s}  {err}")
            continue
        print(f"{e.id:28s} {status:9s} {golden:9s} {diff:>9s} {ms:>7s}")
    print(f"{len(entries) - failures}/{len(entries)} models passed")
    sys.stdout.flush()
    if problems:
        _failed(problems, len(entries), "the self-test")
    return 0
