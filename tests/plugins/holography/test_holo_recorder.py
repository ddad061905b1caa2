"""Recording to HDF5: round trip through our reader, survival of SIGKILL (every flushed frame intact), and clear
errors for an unwritable path and a full disk while the process goes on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from plugins.holography.hdf5 import read_stack
from plugins.holography.optics import preset
from plugins.holography.recorder import Recorder, RecordingError, recorded_length

ROOT = Path(__file__).resolve().parents[3]
OPTICS = preset("dhm-offaxis-10x").optics


def pattern(i: int, shape: tuple[int, int] = (64, 80)) -> np.ndarray:
    return (np.random.default_rng(i).integers(0, 4000, shape) + i).astype(np.uint16)


def test_round_trip(tmp_path):
    bg = pattern(999)
    rec = Recorder(tmp_path / "rec.h5", OPTICS, background=bg, attrs={"model": "m1", "preset": "dhm-offaxis-10x"})
    for i in range(12):
        assert rec.add(pattern(i), index=2 * i, timestamp=100.0 + 0.05 * i, z_m=i * 1e-6,
                       z_pred_m=None if i == 3 else i * 1.1e-6, z_true_m=i * 0.9e-6, method="sweep")
    rec.stop()
    assert rec.error is None and rec.written == 12 and not rec.running
    with h5py.File(tmp_path / "rec.h5", "r") as f:
        assert recorded_length(f) == 12
        assert f["holograms"].chunks == (1, 64, 80) and f["holograms"].maxshape == (None, 64, 80)
        np.testing.assert_allclose(f["timestamps_s"][:], 0.05 * np.arange(12), atol=1e-9)
        np.testing.assert_array_equal(f["frame_index"][:], 2 * np.arange(12))
        assert np.isnan(f["z_pred_m"][3]) and f["z_pred_m"][4] == pytest.approx(4.4e-6)
        assert f["method"][0] == b"sweep" and f.attrs["model"] == "m1"
        np.testing.assert_array_equal(f["background"][:], bg)
    stack = read_stack(tmp_path / "rec.h5")  # a recording is a valid HDF5 stack
    assert stack.optics.wavelength_m == OPTICS.wavelength_m and stack.optics.mode == "offaxis"
    np.testing.assert_array_equal(stack.holograms[7], pattern(7))
    np.testing.assert_allclose(stack.z_m, 0.9e-6 * np.arange(12))


CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from tests.plugins.holography.test_holo_recorder import OPTICS, pattern
from plugins.holography.recorder import Recorder
rec = Recorder({path!r}, OPTICS, flush_interval_s=0.5)
i, last = 0, -1
while True:
    rec.add(pattern(i), index=i, timestamp=1000.0 + i / 50, z_m=i * 1e-7, z_pred_m=i * 2e-7, z_true_m=i * 3e-7,
            method="vit+refine")
    i += 1
    if rec.flushed != last:
        last = rec.flushed
        print(last, flush=True)
    time.sleep(0.02)
"""


def test_sigkill_keeps_every_flushed_frame(tmp_path):
    path = tmp_path / "killed.h5"
    code = CHILD.format(root=str(ROOT), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    flushed = 0
    t0 = None
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            flushed = int(line)
            if flushed > 0 and t0 is None:
                t0 = time.monotonic()
            if t0 is not None and time.monotonic() - t0 > 1.6:  # ~2 s of recording, several flushes
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert flushed >= 40, f"only {flushed} frames flushed before the kill"
    with h5py.File(path, "r") as f:  # plain h5py, no SWMR flag or h5clear needed
        n = recorded_length(f)
        assert n >= flushed
        for i in range(n):
            np.testing.assert_array_equal(f["holograms"][i], pattern(i), err_msg=f"frame {i}")
        np.testing.assert_allclose(f["z_focus_m"][:n], 1e-7 * np.arange(n))
        np.testing.assert_allclose(f["z_m"][:n], 3e-7 * np.arange(n))
        np.testing.assert_allclose(f["timestamps_s"][:n], np.arange(n) / 50, atol=1e-9)
        assert list(f["method"][:n]) == [b"vit+refine"] * n
    if n == flushed:  # nothing past the last flush: the file is a valid stack for every reader
        assert len(read_stack(path)) == n


def test_unwritable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(RecordingError, match="cannot create the file there"):
        Recorder(blocker / "rec.h5", OPTICS)
    with pytest.raises(RecordingError, match="is a folder"):
        Recorder(tmp_path, OPTICS)


FULL_DISK = """
import resource, signal, sys
sys.path.insert(0, {root!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (1_500_000, 1_500_000))
from tests.plugins.holography.test_holo_recorder import OPTICS, pattern
from plugins.holography.recorder import Recorder
errors = []
rec = Recorder({path!r}, OPTICS, flush_interval_s=0.1, on_error=errors.append)
ok = [rec.add(pattern(i, (512, 512)), index=i, timestamp=i, z_m=0.0) for i in range(12)]
import time
t0 = time.monotonic()
while rec.running and time.monotonic() - t0 < 10:
    time.sleep(0.05)
rec.stop()
print(len(errors), rec.written, rec.running, ok.count(True))
print(errors[0] if errors else "no error")
"""


def test_full_disk_stops_recording_with_a_clear_error(tmp_path):
    path = tmp_path / "full.h5"
    r = subprocess.run([sys.executable, "-c", FULL_DISK.format(root=str(ROOT), path=str(path))], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    counts, message = r.stdout.strip().splitlines()[-2:]
    n_err, written, running, _ = counts.split()
    assert n_err == "1" and running == "False" and int(written) > 0
    assert "disk is full" in message and str(path) in message


def test_low_disk_stops_cleanly_and_the_file_stays_complete(tmp_path):
    errors: list[str] = []
    rec = Recorder(tmp_path / "low.h5", OPTICS, on_error=errors.append, min_free_bytes=0)
    for i in range(3):
        rec.add(pattern(i), index=i, timestamp=i, z_m=0.0)
    deadline = time.monotonic() + 5
    while rec.written < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    rec.min_free_bytes = 1 << 62  # as if the disk filled up now
    rec.add(pattern(3), index=3, timestamp=3, z_m=0.0)
    while rec.running and time.monotonic() < deadline:
        time.sleep(0.01)
    rec.stop()
    assert errors and "almost full" in errors[0] and "after 3 frames" in errors[0]
    assert not rec.add(pattern(4), index=4, timestamp=4, z_m=0.0)
    with h5py.File(tmp_path / "low.h5", "r") as f:
        assert recorded_length(f) == 3
        np.testing.assert_array_equal(f["holograms"][2], pattern(2))


def test_hdf5_flush_failure_reads_as_a_full_disk():
    """HDF5 reports a failed flush as a multi-line RuntimeError carrying the errno (which of write or flush fails
    first depends on timing): the user still gets the one-line full-disk message."""
    from plugins.holography.recorder import _describe

    e = RuntimeError("Unable to synchronously flush file (file write failed: time = Wed Dec  2 04:37:20 2026\n"
                     ", filename = 'x.h5', file descriptor = 3, errno = 27, error message = 'File too large', "
                     "buf = 0x7f, total write size = 102504, bytes this sub-write = 102504, offset = 1500000)")
    msg = _describe(Path("x.h5"), e)
    assert msg == "x.h5: the disk is full (or the file hit a size limit); recording stopped"
    assert "\n" not in _describe(Path("x.h5"), RuntimeError("first line\nsecond line"))
