"""HDF5 stacks (docs/formats.md) and the other readers: round trips and one-line errors on bad files."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.holography.hdf5 import StackReader, read_stack, write_stack
from plugins.holography.optics import Optics, preset
from plugins.holography.physics import simulate_stack
from plugins.holography.readers import read_image_frames, read_input, read_video

OPTICS = {"mode": "offaxis", "wavelength_m": 666e-9, "pixel_size_m": 0.5e-6}


def _one_line(exc: pytest.ExceptionInfo, path) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg


@pytest.fixture
def stack(tmp_path):
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", 3, 64, seed=1)
    p = write_stack(tmp_path / "s.h5", h, Optics.from_dict(attrs), z, bg, attrs)
    return p, h, z, bg, attrs


def test_hdf5_round_trip(stack, tmp_path):
    p, h, z, bg, attrs = stack
    s = read_stack(p)
    assert s.holograms.dtype == np.uint16 and np.array_equal(s.holograms, h.astype(np.uint16))
    assert np.array_equal(s.z_m, z) and np.array_equal(s.background, bg.astype(np.uint16))
    assert s.optics.mode == "offaxis" and s.optics.wavelength_m == 666e-9 and s.optics.na == attrs["na"]
    f = write_stack(tmp_path / "f.h5", h.astype(np.float64) / 7, OPTICS)
    s2 = read_stack(f)
    assert s2.holograms.dtype == np.float32 and s2.z_m is None and s2.background is None
    with StackReader(p) as r:
        assert len(r) == 3 and r.shape == (64, 64) and np.array_equal(r.frame(1), h[1])
    assert read_stack(p, {"wavelength_m": 633e-9}).optics.wavelength_m == 633e-9  # command line wins


def _write(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            if k == "attrs":
                f.attrs.update(v)
            else:
                f[k] = v
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "missing dataset /holograms"),
    ("rank", "must be (N,H,W)"),
    ("nan", "NaN"),
    ("attrs", "missing optics attribute(s) pixel_size_m, mode"),
    ("zlen", "/z_m has 2 values for 3"),
    ("bgshape", "/background"),
])
def test_hdf5_bad_content(tmp_path, case, message):
    good = np.ones((3, 32, 32), np.uint16)
    kw = {"holograms": good, "attrs": OPTICS}
    if case == "missing":
        kw = {"frames": good, "attrs": OPTICS}
    elif case == "rank":
        kw["holograms"] = np.ones((32, 32), np.uint16)
    elif case == "nan":
        bad = np.ones((3, 32, 32), np.float32)
        bad[1, 3, 3] = np.nan
        kw["holograms"] = bad
    elif case == "attrs":
        kw["attrs"] = {"wavelength_m": 6e-7}
    elif case == "zlen":
        kw["z_m"] = np.zeros(2)
    elif case == "bgshape":
        kw["background"] = np.ones((16, 16))
    p = _write(tmp_path / f"{case}.h5", **kw)
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        read_stack(p)
    _one_line(e, p)


def test_hdf5_truncated_corrupt_and_missing(stack, tmp_path):
    p = stack[0]
    data = p.read_bytes()
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all" * 50)
    for path, message in ((trunc, "truncated"), (junk, "not an HDF5 file"), (tmp_path / "none.h5", "no such file")):
        with pytest.raises(BadInput, match=message) as e:
            read_stack(path)
        _one_line(e, path)
    # damage the middle of a chunked, compressed dataset: reading that frame fails cleanly
    broken = tmp_path / "broken.h5"
    with h5py.File(stack[0]) as f:
        off = f["holograms"].id.get_chunk_info(1).byte_offset
    raw = bytearray(data)
    raw[off:off + 64] = b"\xff" * 64
    broken.write_bytes(bytes(raw))
    with pytest.raises(BadInput, match="corrupt") as e:
        read_stack(broken)
    _one_line(e, broken)


def test_tiff_multipage_16bit_and_png(tmp_path):
    rng = np.random.default_rng(0)
    pages = [(rng.random((40, 48)) * 60000).astype(np.uint16) for _ in range(3)]
    tif = tmp_path / "stack.tif"
    assert cv2.imwritemulti(str(tif), pages)
    got = read_image_frames(tif)
    assert got.shape == (3, 40, 48) and got.dtype == np.uint16 and np.array_equal(got[2], pages[2])
    png = tmp_path / "one.png"
    rgb = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(png), rgb)
    g = read_image_frames(png)
    assert g.shape == (1, 40, 48) and g.dtype == np.uint8
    bad = tmp_path / "bad.tif"
    bad.write_bytes(tif.read_bytes()[:200])
    with pytest.raises(BadInput, match="not a readable (TIFF|image) .corrupt or truncated") as e:
        read_image_frames(bad)
    _one_line(e, bad)


def test_read_input_with_sidecar_folder_and_cli_optics(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i:02d}.png"), (rng.random((32, 32)) * 255).astype(np.uint8))
    with pytest.raises(BadInput, match="missing optics") as e:
        read_input(folder)
    _one_line(e, folder)
    (folder / "optics.json").write_text(json.dumps({**OPTICS, "z_m": [1e-6, 2e-6, 3e-6]}))
    s = read_input(folder)
    assert s.holograms.shape == (3, 32, 32) and s.optics.mode == "offaxis" and np.allclose(s.z_m, [1e-6, 2e-6, 3e-6])
    s = read_input(folder, {"wavelength_m": 633e-9})
    assert s.optics.wavelength_m == 633e-9
    single = tmp_path / "h.tif"
    cv2.imwrite(str(single), (rng.random((32, 32)) * 4000).astype(np.uint16))
    (tmp_path / "h.tif.json").write_text(json.dumps({**OPTICS, "background": "h.tif"}))
    s = read_input(single)
    assert s.holograms.dtype == np.uint16 and s.background.shape == (32, 32)
    with pytest.raises(BadInput, match="unsupported input type"):
        read_input(tmp_path / "h.tif.json")


def test_video_file(tmp_path):
    p = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48), True)
    if not w.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    for i in range(5):
        w.write(np.full((48, 64, 3), 40 * i, np.uint8))
    w.release()
    frames, fps = read_video(p)
    assert frames.shape == (5, 48, 64) and frames.dtype == np.uint8 and fps == pytest.approx(10)
    s = read_input(p, preset("dhm-offaxis-10x").optics)
    assert len(s) == 5
    empty = tmp_path / "e.avi"
    empty.write_bytes(b"RIFF0000AVI junk")
    with pytest.raises(BadInput) as e:
        read_video(empty)
    _one_line(e, empty)


def test_corrupt_image_error_is_the_only_output(tmp_path):
    """OpenCV logs its own decode errors to stderr; a CLI must show exactly one line, so readers silence it."""
    import subprocess
    import sys
    from pathlib import Path

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    code = ("from plugins.holography.readers import read_image_frames\n"
            "from app.core.errors import BadInput\n"
            f"try:\n    read_image_frames({str(bad)!r})\nexcept BadInput as e:\n    print(e)\n")
    root = Path(__file__).resolve().parents[3]
    r = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert r.stderr.strip() == "" and "(corrupt or truncated)" in r.stdout
