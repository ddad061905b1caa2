"""Frame sources deliver frames with optics (and truth when known); the simulated camera is paced like a camera;
an absent camera is a clear one-line error."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from app.core.errors import BadInput
from app.core.frames import FrameSource
from plugins.holography.hdf5 import write_stack
from plugins.holography.optics import Optics, preset
from plugins.holography.physics import simulate_stack
from plugins.holography.sources import (
    CameraSource,
    HDF5Source,
    ImageSource,
    SimulatedCamera,
    VideoSource,
    open_source,
    triangle_z,
)


def test_simulated_camera_is_paced_and_carries_truth():
    cam = SimulatedCamera(size=96, fps=25, speed_m_s=20e-6, seed=3)
    assert isinstance(cam, FrameSource)
    cam.read()
    t0 = time.monotonic()
    frames = [cam.read() for _ in range(6)]
    elapsed = time.monotonic() - t0
    assert 6 / 25 * 0.8 <= elapsed <= 6 / 25 * 1.8
    zs = [f.meta["z_true_m"] for f in frames]
    steps = np.abs(np.diff(zs))
    assert steps.max() <= 20e-6 / 25 + 1e-12 and np.sum(np.isclose(steps, 20e-6 / 25)) >= 4  # bounces are shorter
    assert all(cam.z_lo <= z <= cam.z_hi for z in zs)
    f = frames[0]
    assert f.data.shape == (96, 96) and isinstance(f.meta["optics"], Optics) and f.meta["optics"].mode == "offaxis"
    assert cam.background.shape == (96, 96)
    again = SimulatedCamera(size=96, fps=1000, speed_m_s=20e-6, seed=3, paced=False)
    assert np.array_equal(again.read().data, SimulatedCamera(size=96, seed=3, paced=False).read().data)
    cam.close()
    assert cam.read() is None


def test_triangle_drift_bounces():
    zs = [triangle_z(t, 0.0, 1.0, -1.0, 2.0) for t in (0, 1.5, 2, 3, 5, 6)]
    assert zs == pytest.approx([0.0, 1.5, 2.0, 1.0, -1.0, 0.0])


def test_hdf5_replay(tmp_path):
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", 3, 64, seed=2)
    p = write_stack(tmp_path / "s.h5", h, Optics.from_dict(attrs), z, bg, attrs)
    src = open_source(p, loop=True)
    assert isinstance(src, HDF5Source) and src.background.shape == (64, 64)
    got = [src.read() for _ in range(4)]
    assert [f.meta["stack_index"] for f in got] == [0, 1, 2, 0] and got[1].meta["z_true_m"] == z[1]
    src.close()
    once = HDF5Source(p)
    assert len([f for f in iter(once.read, None)]) == 3


def test_image_and_video_sources(tmp_path):
    o = preset("dhm-offaxis-10x").optics
    pages = [np.full((32, 40), 100 * (i + 1), np.uint16) for i in range(3)]
    tif = tmp_path / "s.tif"
    cv2.imwritemulti(str(tif), pages)
    src = open_source(tif, optics=o)
    assert isinstance(src, ImageSource) and len(src) == 3
    assert [int(f.data[0, 0]) for f in iter(src.read, None)] == [100, 200, 300]
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((16, 24), 10 * i, np.uint8))
    frames = list(iter(ImageSource(folder, o).read, None))
    assert len(frames) == 2 and frames[1].data.shape == (16, 24)
    avi = tmp_path / "v.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 30, (32, 24), True)
    if w.isOpened():
        for i in range(3):
            w.write(np.full((24, 32, 3), 50 * i, np.uint8))
        w.release()
        v = open_source(avi, optics=o)
        assert isinstance(v, VideoSource) and len(list(iter(v.read, None))) == 3
        v.close()


def test_absent_camera_is_a_clear_error():
    o = preset("dhm-offaxis-10x").optics
    t0 = time.monotonic()
    with pytest.raises(BadInput, match="camera 63: not found") as e:
        CameraSource(63, o)
    assert "\n" not in str(e.value) and time.monotonic() - t0 < 10
    with pytest.raises(BadInput, match="optics are required"):
        open_source("camera:0")
    with pytest.raises(BadInput, match="integer"):
        open_source("camera:front", optics=o)
    with pytest.raises(BadInput, match="no such file"):
        open_source("/nonexistent/holo.h5")
