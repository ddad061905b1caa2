"""Bad inputs the holography readers and commands must refuse with one line that says what is wrong: stacks too
large for memory (read lazily instead, or refused), dangling links and text where numbers belong, float64 values
beyond float32, pipes named .h5, sidecar fields of the wrong type, absurd --z, notes only on success."""

from __future__ import annotations

import json
import os

import cv2
import h5py
import numpy as np
import pytest

from app.cli import main
from app.core import manifest
from app.core.errors import BadInput
from plugins.holography import hdf5
from plugins.holography.hdf5 import LazyFrames, StackReader, read_stack, write_stack
from plugins.holography.optics import Optics
from plugins.holography.physics import simulate_stack
from plugins.holography.readers import read_input
from plugins.holography.reconstruct import check_frame


@pytest.fixture(autouse=True)
def holo_cli(monkeypatch, tmp_path):
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(manifest, "model_roots", lambda: [empty])


@pytest.fixture
def stack(tmp_path):
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", 3, 64, seed=2)
    return write_stack(tmp_path / "s.h5", h, Optics.from_dict(attrs), z, bg, attrs), h


def run(capsys, *argv: str) -> tuple[int, str, list[str]]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, [ln for ln in cap.err.splitlines() if ln.strip()]


def test_a_stack_larger_than_memory_is_read_lazily_and_never_whole(stack, monkeypatch, tmp_path, capsys):
    path, h = stack
    monkeypatch.setattr(hdf5, "available_bytes", lambda: 4 * h[0].nbytes)  # the 3-frame stack no longer fits
    with StackReader(path) as r:
        with pytest.raises(BadInput, match="more than this machine can hold") as e:
            r.read_all()
        assert "\n" not in str(e.value) and "3 frames of 64x64" in str(e.value)
        lazy = r.load().holograms
        assert isinstance(lazy, LazyFrames) and lazy.shape == h.shape and len(lazy) == 3
        assert np.array_equal(lazy[2], h[2]) and np.array_equal(lazy[-1], h[2])
        assert np.array_equal(lazy[:2], h[:2]) and np.array_equal(np.stack(list(lazy)), h)
    code, out, err = run(capsys, "holo", "reconstruct", str(path), "--z", "1e-5", "--frame", "1",
                         "--out", str(tmp_path / "lazy.h5"))
    assert code == 0, err
    monkeypatch.undo()
    assert main(["holo", "reconstruct", str(path), "--z", "1e-5", "--frame", "1", "--out",
                 str(tmp_path / "eager.h5")]) == 0
    with h5py.File(tmp_path / "lazy.h5") as a, h5py.File(tmp_path / "eager.h5") as b:
        assert np.array_equal(a["amplitude"][()], b["amplitude"][()])


def test_a_declared_but_unstored_stack_is_refused_by_its_stored_size(tmp_path):
    p = tmp_path / "declared.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("holograms", shape=(10 ** 5, 2048, 2048), dtype="uint16", chunks=(1, 256, 256))
        f.attrs.update({"mode": "offaxis", "wavelength_m": 666e-9, "pixel_size_m": 5e-7})
    with pytest.raises(BadInput, match="declares 100000 frames of 2048x2048 uint16 .* stores only") as e:
        read_input(p)
    assert "\n" not in str(e.value)


def _mutated(stack, tmp_path, name, change):
    p = tmp_path / f"{name}.h5"
    p.write_bytes(stack[0].read_bytes())
    with h5py.File(p, "r+") as f:
        change(f)
    return p


@pytest.mark.parametrize("name, change, message", [
    ("dangling", lambda f: (f.__delitem__("holograms"), f.__setitem__("holograms", h5py.SoftLink("/nowhere"))),
     "/holograms is a link to /nowhere, which does not exist"),
    ("zm-text", lambda f: (f.__delitem__("z_m"), f.create_dataset("z_m", data="deep")),
     "/z_m must hold numbers (metres), got text"),
    ("bg-text", lambda f: (f.__delitem__("background"), f.create_dataset("background", data="none")),
     "/background must hold numbers"),
    ("zrange-text", lambda f: f.attrs.__setitem__("z_range_m", "wide"), "z_range_m must be a pair of numbers"),
    ("group", lambda f: (f.__delitem__("holograms"), f.create_group("holograms")),
     "/holograms is a group, not a dataset"),
])
def test_intact_files_say_what_is_wrong_not_corrupt(stack, tmp_path, name, change, message):
    p = _mutated(stack, tmp_path, name, change)
    with pytest.raises(BadInput) as e:
        read_stack(p)
    assert message in str(e.value) and "corrupt" not in str(e.value) and "\n" not in str(e.value)


def test_float64_beyond_float32_is_refused_not_turned_into_nan(stack, tmp_path):
    huge = np.linspace(1e299, 1e300, 2 * 64 * 64).reshape(2, 64, 64)
    p = _mutated(stack, tmp_path, "huge", lambda f: (f.__delitem__("holograms"), f.__delitem__("z_m"),
                                                        f.__delitem__("background"),
                                                        f.create_dataset("holograms", data=huge)))
    with pytest.raises(BadInput, match="beyond the float32 range"):
        read_stack(p)
    with pytest.raises(BadInput, match="exceed the float32 range"):
        check_frame(huge[0], "frame")
    assert check_frame(huge[0] * 1e-270, "frame") is not None  # large but representable values are fine


def test_a_pipe_named_h5_is_not_a_regular_file(tmp_path, capsys):
    fifo = tmp_path / "f.h5"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match=r"not a regular file \(a named pipe\)") as e:
        read_input(fifo)  # refused from its type, without opening it (which would block)
    assert "unsupported" not in str(e.value)


@pytest.mark.parametrize("doc, field", [
    ({"background": 5}, "background"), ({"background": ["a.png"]}, "background"),
    ({"z_m": "deep"}, "z_m"), ({"z_m": [[1, [2]]]}, "z_m"), ({"z_m": float("nan")}, "z_m"),
    ({"z_m": [True]}, "z_m"), ({"wavelength_m": "abc"}, "wavelength_m"), ({"z_range_m": "wide"}, "z_range_m"),
    ({"z_range_m": [float("nan"), 1e-5]}, "z_range_m"),
])
def test_sidecar_fields_of_the_wrong_type_are_named(tmp_path, capsys, doc, field):
    img = tmp_path / "h.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(img), (rng.random((64, 64)) * 200 + 20).astype(np.uint8))
    base = {"wavelength_m": 6.66e-7, "pixel_size_m": 5e-7, "mode": "offaxis", "na": 0.25}
    (tmp_path / "h.png.json").write_text(json.dumps({**base, **doc}))
    code, out, err = run(capsys, "holo", "autofocus", str(img), "--method", "sweep")
    assert code == 2 and len(err) == 1 and field in err[0] and out == "", err


def test_absurd_z_is_refused_with_the_plausible_range_unless_the_range_is_widened(stack, tmp_path, capsys):
    path, _ = stack
    code, out, err = run(capsys, "holo", "reconstruct", str(path), "--z", "1e-3", "--out", str(tmp_path / "r.h5"))
    assert code == 2 and len(err) == 1 and "plausible ±460 µm" in err[0] and not (tmp_path / "r.h5").exists()
    code, out, err = run(capsys, "holo", "reconstruct", str(path), "--z", "1e-3", "--z-range", "-2e-4", "2e-4",
                         "--out", str(tmp_path / "r.h5"))
    assert code == 0 and (tmp_path / "r.h5").exists(), err


def test_notes_are_printed_on_success_only(stack, tmp_path, capsys):
    """A refusal is its one error line: the sideband note of the same run is not printed besides it."""
    path, _ = stack
    code, _, err = run(capsys, "holo", "reconstruct", str(path), "--z", "1e-5", "--out", str(tmp_path / "r.h5"))
    assert code == 0 and any("note: sideband" in ln for ln in err)
    code, _, err = run(capsys, "holo", "reconstruct", str(path), "--z", "1e-5", "--frame", "7",
                       "--out", str(tmp_path / "r2.h5"))
    assert code == 2 and len(err) == 1 and "--frame 7" in err[0]


@pytest.mark.parametrize("argv, words", [
    (("simulate", "--seed", "-1"), "--seed must be between 0"),
    (("simulate", "--n", "0"), "--n must be between 1"),
    (("simulate", "--kinds", ""), "--kinds: empty"),
    (("bench", "--size", "0"), "--size must be between 32"),
    (("bench", "--frames", "-1"), "--frames must be between 1"),
])
def test_options_out_of_range_are_one_line(tmp_path, capsys, argv, words):
    extra = ("--out", str(tmp_path / "s.h5"), "--size", "64") if argv[0] == "simulate" else ("--method", "manual")
    code, out, err = run(capsys, "holo", *argv, *extra)
    assert code == 2 and len(err) == 1 and words in err[0] and not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("where", ["under-file", "is-dir", "empty"])
@pytest.mark.parametrize("cmd", ["simulate", "reconstruct-h5", "reconstruct-png"])
def test_outputs_that_cannot_be_written_are_refused_before_any_work(stack, tmp_path, capsys, where, cmd):
    (tmp_path / "blocker").write_text("a regular file")
    (tmp_path / "adir").mkdir()
    suffix = ".png" if cmd == "reconstruct-png" else ".h5"
    out = {"under-file": str(tmp_path / "blocker" / f"x{suffix}"), "is-dir": str(tmp_path / "adir"), "empty": ""}
    argv = (["simulate", "--n", "2", "--size", "64"] if cmd == "simulate"
            else ["reconstruct", str(stack[0]), "--z", "1e-5"])
    code, _, err = run(capsys, "holo", *argv, "--out", out[where])
    assert code == 2 and len(err) == 1 and "--out" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["adir", "blocker", "no-models", "s.h5"])
