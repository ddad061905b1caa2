"""`vitascope holo ...`: simulate → autofocus --json (docs/formats.md) → reconstruct; bench; bad inputs exit 2
with exactly one line on stderr and nothing on stdout."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest

from app.cli import main
from app.core import manifest


@pytest.fixture(autouse=True)
def holo_cli(monkeypatch, tmp_path):
    """No shipped or installed model (→ sweep)."""
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(manifest, "model_roots", lambda: [empty])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("holo") / "sim.h5"
    assert main(["holo", "simulate", "--out", str(out), "--n", "3", "--size", "192", "--seed", "3"]) == 0
    return out


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_simulate_writes_a_labelled_stack(stack):
    with h5py.File(stack, "r") as f:
        assert f["holograms"].shape == (3, 192, 192) and f["z_m"].shape == (3,)
        assert f.attrs["mode"] == "offaxis" and f.attrs["wavelength_m"] == pytest.approx(666e-9)
        assert f["background"].shape == (192, 192)


def test_autofocus_json_format_and_fallback_note(stack, capsys):
    code, out, err = run(capsys, "holo", "autofocus", str(stack), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) - {"warnings"} == {"model", "sideband", "background", "frames", "auto"} and doc["model"] is None
    assert doc["background"] == "recorded"
    flagged = [r["index"] for r in doc["frames"] if r["focus_in_range"] is False]
    assert ("warnings" in doc) == bool(flagged)  # only "no focus in range" warnings here (with a background)
    assert doc["auto"]["method"] == "sweep" and doc["auto"]["why"].startswith("Auto → sweep: no installed")
    assert doc["sideband"]["value"] == "+1" and "not stated" in doc["sideband"]["source"]
    assert [set(r) for r in doc["frames"]] == [{"index", "z_m", "method", "ms", "focus_confidence",
                                                "focus_in_range"}] * 3
    assert [r["index"] for r in doc["frames"]] == [0, 1, 2] and {r["method"] for r in doc["frames"]} == {"sweep"}
    assert "no installed autofocus model matches" in err.lower() and "sweep" in err
    with h5py.File(stack, "r") as f:
        truth = f["z_m"][:]
    err_um = np.abs(np.array([r["z_m"] for r in doc["frames"]]) - truth) * 1e6
    assert np.median(err_um) < 3, err_um
    code, out, err = run(capsys, "holo", "autofocus", str(stack), "--method", "sweep")
    assert code == 0 and "MAE" in out and err.count("\n") == 1 + bool(flagged) and "sideband +1 (default" in err


def test_reconstruct_to_h5_tif_and_png(stack, tmp_path, capsys):
    code, out, _ = run(capsys, "holo", "reconstruct", str(stack), "--z", "1e-5", "--out", str(tmp_path / "r.h5"))
    assert code == 0
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f["amplitude"].shape == f["phase"].shape and f["amplitude"].shape[0] == 3
        assert np.all(f["z_m"][:] == 1e-5) and f.attrs["pixel_size_m"] >= 0.5e-6
    code, out, _ = run(capsys, "holo", "reconstruct", str(stack), "--z", "auto", "--frame", "1",
                       "--out", str(tmp_path / "r.tif"))
    assert code == 0
    ok, pages = cv2.imreadmulti(str(tmp_path / "r.tif"), flags=cv2.IMREAD_ANYDEPTH)
    assert ok and len(pages) == 2 and pages[0].dtype == np.float32
    code, out, _ = run(capsys, "holo", "reconstruct", str(stack), "--z", "0", "--unwrap", "--out",
                       str(tmp_path / "r.png"))
    assert code == 0 and (tmp_path / "r_amplitude.png").exists() and (tmp_path / "r_phase.png").exists()


def test_bench_reports_fps(capsys):
    code, out, _ = run(capsys, "holo", "bench", "--size", "128", "--frames", "5", "--method", "manual", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["fps"] > 0 and res["frames"] == 5 and "reconstruct" in res["stages_ms"]


def _h5(path, holograms, **attrs):
    with h5py.File(path, "w") as f:
        f["holograms"] = holograms
        for k, v in {"wavelength_m": 666e-9, "pixel_size_m": 0.5e-6, "mode": "offaxis", **attrs}.items():
            f.attrs[k] = v
    return path


def bad_inputs(tmp_path, stack):
    rng = np.random.default_rng(0)
    good = rng.integers(100, 4000, (2, 64, 64)).astype(np.uint16)
    nan = good.astype(np.float32)
    nan[1, 5, 5] = np.nan
    sat = good.copy()
    sat[1, :40] = 4095
    sat[1, 40:] = 4095
    sat[1, 0, 0] = 10
    png = tmp_path / "holo.png"
    cv2.imwrite(str(png), good[0])
    return {
        "missing file": (str(tmp_path / "nope.h5"), "no such file"),
        "NaN stack": (str(_h5(tmp_path / "nan.h5", nan)), "NaN"),
        "wrong rank": (str(_h5(tmp_path / "rank.h5", good[0])), "rank"),
        "saturated frame": (str(_h5(tmp_path / "sat.h5", sat)), "saturated"),
        "missing optics (PNG)": (str(png), "missing optics"),
    }


@pytest.mark.parametrize("case", ["missing file", "NaN stack", "wrong rank", "saturated frame",
                                  "missing optics (PNG)"])
@pytest.mark.parametrize("command", ["autofocus", "reconstruct"])
def test_bad_input_exits_2_with_one_line(case, command, stack, tmp_path, capsys):
    path, words = bad_inputs(tmp_path, stack)[case]
    argv = ["holo", command, path, "--json"] if command == "autofocus" else \
        ["holo", command, path, "--z", "0", "--out", str(tmp_path / "o.h5")]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("vitascope: ") and words.lower() in err.lower(), err
    assert path.split("/")[-1] in err


def test_png_with_optics_on_the_command_line_works(stack, tmp_path, capsys):
    with h5py.File(stack, "r") as f:
        cv2.imwrite(str(tmp_path / "h.png"), (f["holograms"][0] >> 4).astype(np.uint8) if f["holograms"].dtype
                    == np.uint16 else f["holograms"][0])
    code, out, err = run(capsys, "holo", "autofocus", str(tmp_path / "h.png"), "--preset", "dhm-offaxis-10x",
                         "--method", "sweep", "--json")
    assert code == 0 and len(json.loads(out)["frames"]) == 1


def test_z_range_narrows_the_search_and_a_bad_one_exits_2(holo_data, capsys):
    path = str(holo_data / "inline_lensless_example.tif")
    code, out, _ = run(capsys, "holo", "autofocus", path, "--preset", "inline-lensless", "--z-range", "14e-3",
                       "18e-3", "--method", "sweep", "--json")
    (row,) = json.loads(out)["frames"]
    assert code == 0 and 14e-3 <= row["z_m"] <= 18e-3  # the focus (~12.9 mm) is outside: the search stays inside
    code, out, err = run(capsys, "holo", "autofocus", path, "--preset", "inline-lensless", "--z-range", "18e-3",
                         "8e-3", "--json")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--z-range" in err
