"""Koala-style sequence folders: Holograms/ read in numeric order (8- and 16-bit TIFF frames), timestamps.txt carried
into the stack's metadata, Phase/ and Intensity/ left alone, optics from a sidecar, the CLI's autofocus on such a
folder, and one-line refusals of broken folders (fuzzed included)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.core import manifest
from app.core.errors import BadInput, VitascopeError
from plugins.holography.koala import is_koala_folder, natural_key, parse_timestamps
from plugins.holography.readers import read_input

Z = [-20e-6, 8e-6, 26e-6]
T_MS = [55503123.0, 40.0, 80.0]  # an absolute time of day for the first frame, then offsets from it


def _save(path, a: np.ndarray) -> None:
    Image.fromarray(a).save(path, format="TIFF")


def _koala(tmp, offaxis_frame, depth: int = 16, size: int = 128, names=None, timestamps: bool = True,
           sidecar: bool = True):
    """A sequence folder as that software writes it, with simulated off-axis frames at Z: (folder, frames)."""
    seq = tmp / "2024.03.05 14-07-33"  # dated folder name: the sidecar is found beside it despite the dots
    (seq / "Holograms").mkdir(parents=True)
    frames, optics = [], None
    for i, z in enumerate(Z):
        holo, _, optics, _ = offaxis_frame("usaf", z, size=size, seed=30 + i)
        a = holo.astype(np.float64)
        if depth == 8:
            a = np.clip(a / a.max() * 250, 0, 255).astype(np.uint8)
        else:
            a = np.clip(a / a.max() * 60000, 0, 65535).astype(np.uint16)
        frames.append(a)
        _save(seq / "Holograms" / (names[i] if names else f"{i:05d}_holo.tif"), a)
    for sub in ("Phase/Float/Bin", "Intensity/Image"):
        (seq / sub).mkdir(parents=True)
    (seq / "Phase" / "Float" / "Bin" / "00000_phase.bin").write_bytes(b"\0" * 64)
    _save(seq / "Intensity" / "Image" / "00000_intensity.tif", np.zeros((40, 40), np.uint8))  # another size
    _save(seq / "Phase" / "00000_phase.tif", np.zeros((50, 50), np.uint8))
    if timestamps:
        (seq / "timestamps.txt").write_text("".join(
            f"{i:05d} 15:25:{3 + i:02d}.123 24.03.05 {t:.0f}\n" for i, t in enumerate(T_MS)))
    if sidecar:
        (tmp / f"{seq.name}.json").write_text(json.dumps({**optics.with_(sideband="+1").to_dict(), "z_m": Z}))
    return seq, frames


@pytest.mark.parametrize("depth", [8, 16])
def test_koala_folder_reads_holograms_only_in_order_with_times_and_sidecar_optics(tmp_path, offaxis_frame, depth):
    seq, frames = _koala(tmp_path, offaxis_frame, depth)
    assert is_koala_folder(seq) and not is_koala_folder(seq / "Holograms")
    st = read_input(seq)
    assert st.holograms.dtype == (np.uint8 if depth == 8 else np.uint16)
    assert st.holograms.shape == (3, 128, 128)  # Phase/ and Intensity/ (other sizes) were not read
    assert all(np.array_equal(st.holograms[i], frames[i]) for i in range(3))
    assert np.allclose(st.attrs["frame_time_s"], [0.0, 0.040, 0.080])
    assert list(st.attrs["frame_number"]) == [0, 1, 2] and st.attrs["layout"] == "koala"
    assert st.optics.mode == "offaxis" and np.allclose(st.z_m, Z)


def test_frames_are_sorted_by_number_and_times_follow_the_frame_numbers(tmp_path, offaxis_frame):
    names = ["2_holo.tif", "10_holo.tif", "1_holo.tif"]  # by name: 1, 10, 2
    seq, frames = _koala(tmp_path, offaxis_frame, names=names, timestamps=False)
    (seq / "timestamps.txt").write_text("10 x 24.03.05 300\n1 x 24.03.05 100\n2 x 24.03.05 150\n")
    st = read_input(seq)
    order = [2, 0, 1]  # 1_holo, 2_holo, 10_holo
    assert all(np.array_equal(st.holograms[k], frames[i]) for k, i in enumerate(order))
    assert list(st.attrs["frame_number"]) == [1, 2, 10]
    assert np.allclose(st.attrs["frame_time_s"], [0.0, 0.05, 0.2])
    assert sorted(["f10", "f2", "f1"], key=natural_key) == ["f1", "f2", "f10"]
    assert sorted(["00010_holo", "00002_holo"], key=natural_key) == ["00002_holo", "00010_holo"]


def test_cli_autofocus_on_a_koala_folder(tmp_path, offaxis_frame, monkeypatch, capsys):
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(manifest, "model_roots", lambda: [empty])
    seq, _ = _koala(tmp_path, offaxis_frame, 16, size=192)
    assert main(["holo", "autofocus", str(seq), "--method", "sweep", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    got = np.array([f["z_m"] for f in doc["frames"]])
    assert np.median(np.abs(got - np.array(Z))) < 3e-6, got
    assert [f["time_s"] for f in doc["frames"]] == pytest.approx([0.0, 0.04, 0.08])
    assert doc["background"] == "frame"  # no background hologram in the folder: estimated from each frame


def test_timestamps_that_do_not_fit_leave_the_frames_without_times(tmp_path, offaxis_frame):
    seq, _ = _koala(tmp_path, offaxis_frame, 8, timestamps=False)
    (seq / "timestamps.txt").write_text("00000 a b 0\n00001 a b 40\n")  # 2 lines for 3 frames
    st = read_input(seq)
    assert "frame_time_s" not in st.attrs and "ignored" in st.attrs["timestamps"]
    (seq / "timestamps.txt").write_text("frame time\n")
    assert "frame_time_s" not in read_input(seq).attrs
    assert parse_timestamps("0 15:25:03.5\n1 15:25:04\n") == {0: 55503500.0, 1: 55504000.0}
    with pytest.raises(ValueError, match="twice"):
        parse_timestamps("0 1\n0 2\n")


def _one_line(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_broken_koala_folders_are_refused_in_one_line(tmp_path, offaxis_frame, capsys):
    seq, frames = _koala(tmp_path, offaxis_frame, 16, sidecar=True)
    for f in (seq / "Holograms").iterdir():
        f.unlink()
    with pytest.raises(BadInput, match="Holograms/ holds no hologram images"):
        read_input(seq)
    assert main(["holo", "autofocus", str(seq), "--method", "sweep"]) == 2
    _one_line(capsys.readouterr().err)
    _save(seq / "Holograms" / "00000_holo.tif", frames[0])
    _save(seq / "Holograms" / "00001_holo.tif", frames[1][:64])
    with pytest.raises(BadInput, match="differ in size"):
        read_input(seq)
    assert main(["holo", "reconstruct", str(seq), "--z", "1e-5", "--out", str(tmp_path / "r.tif")]) == 2
    _one_line(capsys.readouterr().err)


def test_fuzzed_koala_folders_read_or_refuse_in_one_line(tmp_path, offaxis_frame):
    seq, _ = _koala(tmp_path, offaxis_frame, 16, size=64)
    good_ts = (seq / "timestamps.txt").read_bytes()
    holos = sorted((seq / "Holograms").iterdir())
    good = {p: p.read_bytes() for p in holos}
    rng = np.random.default_rng(7)
    outcomes = {"read": 0, "refused": 0}
    for _ in range(40):
        for p, b in good.items():
            p.write_bytes(b)
        ts = bytearray(good_ts)
        for _ in range(int(rng.integers(1, 8))):  # flip, drop or insert bytes in timestamps.txt
            k = int(rng.integers(len(ts)))
            op = rng.integers(3)
            if op == 0:
                ts[k] = int(rng.integers(256))
            elif op == 1:
                del ts[k]
            else:
                ts.insert(k, int(rng.integers(256)))
        (seq / "timestamps.txt").write_bytes(bytes(ts))
        victim = holos[int(rng.integers(len(holos)))]
        b = good[victim]
        if rng.random() < 0.5:  # truncate a frame
            victim.write_bytes(b[: int(rng.integers(0, len(b)))])
        else:  # or corrupt bytes inside it
            m = bytearray(b)
            for k in rng.integers(0, len(m), 16):
                m[int(k)] = int(rng.integers(256))
            victim.write_bytes(bytes(m))
        try:
            st = read_input(seq)
        except VitascopeError as e:
            assert "\n" not in str(e) and str(e), e
            outcomes["refused"] += 1
            continue
        t = st.attrs.get("frame_time_s")
        assert t is None or (len(t) == len(st.holograms) and np.isfinite(t).all())
        outcomes["read"] += 1
    assert outcomes["refused"] > 0, outcomes  # the fuzz did reach the refusals
