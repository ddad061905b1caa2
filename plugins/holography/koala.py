"""Koala-style sequence folders (the layout Lyncée Tec's Koala software writes when it records a sequence): the
numbered hologram frames of `Holograms/` in numeric order, with each frame's time from `timestamps.txt`.

The layout, as recorded sequences of that software are laid out on disk:

    <sequence>/Holograms/00000_holo.tif, 00001_holo.tif, …   raw holograms, one 8- or 16-bit grayscale TIFF per frame
    <sequence>/timestamps.txt                                   optional: one line per frame, space-separated fields;
                                                                the first is the frame number (the file name's
                                                                number), the last the frame's time in milliseconds
                                                                (the first line may give an absolute time, the
                                                                later ones an offset from the first frame)
    <sequence>/Phase/…, Intensity/…                             reconstructions written by that software: not read

Only `Holograms/` is read as holograms; optics come from a sidecar (`optics.json` in the sequence folder, or
`<sequence>.json` next to it) or the command line, as for other inputs. A malformed or mismatched timestamps file
does not refuse the holograms: the frames come without times and the reason is logged and kept in the metadata."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from app.core.errors import BadInput

log = logging.getLogger(__name__)

HOLOGRAM_DIR = "Holograms"
TIMESTAMPS_FILE = "timestamps.txt"
MAX_TIMESTAMP_BYTES = 16 * 2 ** 20  # larger (over half a million frames at ~30 bytes a line) is not read
_NUMBER = re.compile(r"(\d+)")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$")


def _child(folder: Path, name: str, want_dir: bool) -> Path | None:
    """`folder/name`, matched case-insensitively (sequences move between Windows and other systems)."""
    exact = folder / name
    if (exact.is_dir() if want_dir else exact.is_file()):
        return exact
    try:
        for c in folder.iterdir():
            if c.name.lower() == name.lower() and (c.is_dir() if want_dir else c.is_file()):
                return c
    except OSError:
        return None
    return None


def is_koala_folder(path: str | Path) -> bool:
    """Whether `path` is a sequence folder of that layout: a folder with a `Holograms/` sub-folder."""
    p = Path(path)
    return p.is_dir() and _child(p, HOLOGRAM_DIR, want_dir=True) is not None


def natural_key(name: str) -> tuple:
    """Sort key comparing the digit runs of a name as numbers: "2_holo" before "10_holo", "00002" before "00010"."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in _NUMBER.split(name) if t)


def frame_number(path: Path) -> int | None:
    """The frame number a hologram's file name starts with ("00012_holo.tif" → 12), else None."""
    m = re.match(r"^(\d+)", path.name)
    return int(m.group(1)) if m else None


def hologram_files(folder: str | Path, suffixes: set[str]) -> list[Path]:
    """The hologram images of a sequence folder's `Holograms/`, in numeric order; BadInput when there are none."""
    p = Path(folder)
    holo = _child(p, HOLOGRAM_DIR, want_dir=True)
    if holo is None:
        raise BadInput(f"{p}: not a sequence folder (no {HOLOGRAM_DIR}/ sub-folder)")
    files = [f for f in holo.iterdir() if f.is_file() and f.suffix.lower() in suffixes and not f.name.startswith(".")]
    if not files:
        raise BadInput(f"{p}: sequence folder whose {holo.name}/ holds no hologram images "
                       f"({', '.join(sorted(suffixes))})")
    return sorted(files, key=lambda f: natural_key(f.name))


def _ms(token: str) -> float | None:
    """A time field in milliseconds: a plain number, or a clock time H:MM:SS(.fff)."""
    try:
        v = float(token)
        return v if np.isfinite(v) else None
    except ValueError:
        pass
    m = _CLOCK.match(token)
    if m is None:
        return None
    h, mi, s = int(m.group(1)), int(m.group(2)), float(m.group(3))
    return ((h * 60 + mi) * 60 + s) * 1000.0


def parse_timestamps(text: str) -> dict[int, float]:
    """{frame number: time in ms} from a timestamps file's text; ValueError (with the line) when malformed."""
    out: dict[int, float] = {}
    for k, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if not fields[0].isdigit() or len(fields) < 2:
            raise ValueError(f"line {k} does not start with a frame number and a time")
        ms = _ms(fields[-1])
        if ms is None:
            raise ValueError(f"line {k}: the last field {fields[-1][:20]!r} is not a time in milliseconds")
        n = int(fields[0])
        if n in out:
            raise ValueError(f"line {k}: frame {n} listed twice")
        out[n] = ms
    if not out:
        raise ValueError("no lines")
    return out


def frame_times(folder: str | Path, files: list[Path]) -> tuple[np.ndarray | None, str]:
    """(per-frame time in seconds from the first frame, or None; one-line note on where the times come from)."""
    p = Path(folder)
    ts = _child(p, TIMESTAMPS_FILE, want_dir=False)
    if ts is None:
        return None, f"no {TIMESTAMPS_FILE}: frames without times"
    try:
        if ts.stat().st_size > MAX_TIMESTAMP_BYTES:
            raise ValueError(f"larger than {MAX_TIMESTAMP_BYTES // 2 ** 20} MB")
        table = parse_timestamps(ts.read_text(encoding="utf-8", errors="strict"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        note = f"{ts.name} ignored ({e}): frames without times"
        log.warning("%s: %s", p, note)
        return None, note
    numbers = [frame_number(f) for f in files]
    if all(n is not None and n in table for n in numbers):
        ms = np.array([table[n] for n in numbers], np.float64)  # type: ignore[index]
        how = "by frame number"
    elif len(table) == len(files):
        ms = np.array([table[n] for n in sorted(table)], np.float64)
        how = "in order (the file names carry no matching frame numbers)"
    else:
        note = (f"{ts.name} ignored ({len(table)} lines for {len(files)} holograms, frame numbers not matching): "
                "frames without times")
        log.warning("%s: %s", p, note)
        return None, note
    first = ms[0]
    rest = ms[1:]
    if rest.size and np.all(rest < first) and np.all(np.diff(rest) >= 0):
        t = np.concatenate([[0.0], rest]) / 1000.0  # an absolute first time, then offsets from it
    else:
        t = (ms - first) / 1000.0
    if not np.all(np.isfinite(t)):
        return None, f"{ts.name} ignored (non-finite times): frames without times"
    return t, f"times from {ts.name}, {how}"
