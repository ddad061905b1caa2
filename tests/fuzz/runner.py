"""Run one fuzz case: the CLI in this process (`app.cli.main`, stdout/stderr captured at the file descriptors too,
so C-library chatter counts) or as a child process; classify what happened against the case's promise."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.corpus import CARD_MUTATIONS, Case

REPO = Path(__file__).resolve().parents[2]
OUTCOMES = ("ok", "traceback", "multi-line", "wrong exit", "wrong words", "stray write", "hang")
RESULTS: Counter = Counter()  # (kind, outcome) -> cases of this session, for the counts table


@dataclass
class Outcome:
    code: int | None
    stdout: str
    stderr: str
    stray: list[str] = field(default_factory=list)

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every path under the roots with (size, mtime_ns); symlinks are not followed."""
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                out[p] = (st.st_size if not os.path.isdir(p) else 0, st.st_mtime_ns if not os.path.isdir(p) else 0)
    return out


def materialize(case: Case, work: Path, fixtures: Path) -> None:
    """Create the case's input files in `work` (bytes, FIFOs, links, folders, copies of fixtures)."""
    for name, content in case.files:
        p = work / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content.replace(b"{W}", str(work).encode()).replace(b"{F}", str(fixtures).encode()))
        elif content == ("tamper",):
            data = bytearray(p.read_bytes())
            data[len(data) // 2] ^= 0xFF
            p.write_bytes(bytes(data))
        elif content == ("truncate",):
            p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        elif content == ("remove",):
            p.unlink()
        elif content[0] == "flip":  # seeded damage: overwrite a few bytes, or cut the file short
            import random

            rng = random.Random(content[1])
            data = bytearray(p.read_bytes())
            if rng.random() < 0.25:
                data = data[: rng.randrange(len(data))]
            else:
                for _ in range(rng.choice((1, 2, 8, 64))):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            p.write_bytes(bytes(data))
        elif content[0] == "h5":
            import h5py

            from tests.fuzz.corpus import H5_MUTATIONS

            shutil.copy2(fixtures / "ok.h5", p)
            with h5py.File(p, "r+") as f:
                dict(H5_MUTATIONS)[content[1]](f)
        elif content[0] == "card":
            import tomli_w

            shutil.copytree(fixtures / "model", p)
            card = tomllib.loads((p / "card.toml").read_text())
            mutate = dict(CARD_MUTATIONS)[content[1]]
            (p / "card.toml").write_text(tomli_w.dumps(mutate(card)))
        elif content[0] in ("fifo", "symlink", "hardlink") and (p.exists() or p.is_symlink()):
            p.unlink()  # replace a copied fixture's file by the hostile entry
            materialize(Case(case.id, case.kind, (), files=((name, content),)), work, fixtures)
        elif content == ("fifo",):
            os.mkfifo(p)
        elif content == ("dir",):
            p.mkdir(exist_ok=True)
        elif content[0] == "symlink":
            os.symlink(content[1].replace("{F}", str(fixtures)).replace("{W}", str(work)), p)
        elif content[0] == "hardlink":
            os.link(Path(content[1].replace("{F}", str(fixtures)).replace("{W}", str(work))), p)
        elif content[0] == "copy":
            src = Path(content[1].replace("{F}", str(fixtures)))
            shutil.copytree(src, p) if src.is_dir() else shutil.copy2(src, p)
        else:
            raise ValueError(f"{case.id}: unknown file content {content!r}")


def argv_of(case: Case, work: Path, fixtures: Path) -> list[str]:
    return [a.replace("{W}", str(work)).replace("{F}", str(fixtures)) for a in case.argv]


@contextlib.contextmanager
def _captured_fds():
    """Point fds 1 and 2 at temp files (C libraries write there) and sys.stdout/err at StringIOs."""
    sys.stdout.flush()
    sys.stderr.flush()
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    saved = [os.dup(1), os.dup(2)]
    py = [io.StringIO(), io.StringIO()]
    old_py = (sys.stdout, sys.stderr)
    try:
        os.dup2(files[0].fileno(), 1)
        os.dup2(files[1].fileno(), 2)
        sys.stdout, sys.stderr = py
        yield py, files
    finally:
        sys.stdout, sys.stderr = old_py
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        for f in files:
            f.close()


def _run_in_process(argv: list[str], work: Path, home: Path) -> Outcome:
    from app.cli import main

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    old_cwd, old_home = os.getcwd(), os.environ.get("VITASCOPE_HOME")
    root.handlers = []  # main's basicConfig then logs to this case's stderr, as in a fresh process
    os.environ["VITASCOPE_HOME"] = str(home)
    os.chdir(work)
    code: int | None
    try:
        with _captured_fds() as (py, files), warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = (lambda message, category, filename, lineno, file=None, line=None:
                                    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno,
                                                                            line)))
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:  # noqa: BLE001 - what escapes main is what a user would see as a traceback
                import traceback

                sys.stderr.write(traceback.format_exc())
                code = None
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = py[0].getvalue(), py[1].getvalue()
            for f, kind in zip(files, ("out", "err"), strict=True):
                f.seek(0)
                text = f.read().decode("utf-8", "replace")
                if kind == "out":
                    out += text
                else:
                    err += text
    finally:
        os.chdir(old_cwd)
        if old_home is None:
            os.environ.pop("VITASCOPE_HOME", None)
        else:
            os.environ["VITASCOPE_HOME"] = old_home
        for h in root.handlers:
            h.close()
        root.handlers, root.level = handlers, level
    return Outcome(code, out, err)


def _run_child(argv: list[str], work: Path, home: Path, timeout: float) -> Outcome:
    env = {**os.environ, "VITASCOPE_HOME": str(home), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        r = subprocess.run([sys.executable, "-m", "app", *argv], cwd=work, env=env, capture_output=True, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return Outcome(None, str(e.stdout or ""), "hang")
    return Outcome(r.returncode, r.stdout, r.stderr)


def run_case(case: Case, fixtures: Path, base: Path, child: bool | None = None, timeout: float = 20) -> Outcome:
    """Materialize the case under `base/<id>`, run it, and report stray writes: anything created or changed
    outside the case's named outputs, in its folder, its VITASCOPE_HOME or the shared fixtures."""
    work = base / case.id
    work.mkdir(parents=True)
    materialize(case, work, fixtures)
    before = snapshot(work, fixtures)
    argv = argv_of(case, work, fixtures)
    home = work / ".home"
    if argv[:1] == ["--home"]:  # the case's own VITASCOPE_HOME (a zoo it set up)
        home, argv = Path(argv[1]), argv[2:]
    outcome = (_run_child(argv, work, home, timeout) if (case.child if child is None else child)
               else _run_in_process(argv, work, home))
    after = snapshot(work, fixtures)
    allowed = [str(work / o) for o in case.outputs]
    outcome.stray = sorted(p for p, sig in after.items() if before.get(p) != sig
                           and not any(p == a or p.startswith(a + os.sep) for a in allowed))
    return outcome


def classify(case: Case, o: Outcome) -> str:
    """One of OUTCOMES: "ok" when the case's promise held (exit code, one stderr line for a refusal, no
    traceback, nothing written outside the named outputs)."""
    if o.code is None and o.stderr == "hang":
        return "hang"
    if "Traceback (most recent call last)" in o.stderr or o.code is None:
        return "traceback"
    if o.code != case.expect and o.code not in case.also_ok:
        return "wrong exit"
    if (o.code == 2 or (o.code == 1 == case.expect and case.kind != "bit-flips")) and len(o.err_lines) != 1:
        return "multi-line"
    chatter = [ln for ln in o.err_lines if "warning" in ln.lower() or "error" in ln.lower()]
    if o.code == 0 and case.kind != "bit-flips" and chatter:
        return "multi-line"
    if o.code == 2 and any(w.lower() in o.stderr.lower() for w in case.not_words):
        return "wrong words"
    if o.stray:
        return "stray write"
    return "ok"
