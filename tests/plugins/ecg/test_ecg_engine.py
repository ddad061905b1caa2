"""The ECG engine and CLI with the shipped model: screening real and demo files, heatmaps, held-out accuracy on a
small fresh set, exit codes and JSON output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.host import HeadlessHost
from app.core.zoo import Zoo
from plugins.ecg.engine import TASK, EcgEngine
from plugins.ecg.types import CLASSES

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data" / "ecg"
SAMPLES = REPO / "plugins" / "ecg" / "samples"
MODEL = REPO / "plugins" / "ecg" / "models" / "ecg-screen-vit"


@pytest.fixture(scope="module")
def engine() -> EcgEngine:
    return EcgEngine(HeadlessHost(zoo=Zoo()))


def test_a_screening_model_ships(engine):
    assert engine.available_models(), f"no {TASK} model in models/"
    mid, sha = engine.model_info()
    assert mid == "ecg-screen-vit" and len(sha) == 64


def test_demo_files_screen_with_heatmaps_and_measurements(engine):
    files = engine.demo_files()
    assert {p.suffix for p in files} >= {".png", ".jpg", ".hea"}
    for path in files:
        (inp,) = engine.read(path)
        r = engine.screen(inp)
        assert r.label in CLASSES and r.model_id == "ecg-screen-vit"
        assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
        assert r.heatmap is not None and r.heatmap.min() >= 0 and r.heatmap.max() <= 1
        h, w = inp.image.shape[:2]  # the map covers the image (letterbox margins cropped off), same aspect
        assert abs(r.heatmap.shape[1] / r.heatmap.shape[0] - w / h) < 0.05
        if path.suffix == ".hea":
            assert 40 < r.measurements["HR"] < 150 and 60 < r.measurements["QRS"] < 160


def test_heldout_accuracy_on_a_fresh_small_set(engine):
    """20 new ECGs per class (a seed no card uses), every style: well above chance (the card has the full set)."""
    from plugins.ecg.dataset import make_item
    from plugins.ecg.render import LAYOUTS, STYLES
    from plugins.ecg.waveform import simulate  # noqa: F401  (make_item simulates)

    size = engine.input_size()
    xs, ys = [], []
    for c, label in enumerate(CLASSES):
        for i in range(20):
            img, _ = make_item(label, 9_000_000 + 100 * c + i, size, STYLES, [lay for lay in LAYOUTS
                                                                           if lay in ("3x4+II", "3x4", "6x2", "12x1")])
            xs.append(img)
            ys.append(c)
    from plugins.ecg.preprocess import normalise

    x = normalise(np.stack(xs))[:, None]
    logits = engine.model.run(x)[0]
    acc = float(np.mean(logits.argmax(1) == np.array(ys)))
    assert acc >= 0.80, acc


def test_real_files_screen_without_error(engine):
    if not SHARED.is_dir():
        pytest.skip("../shared/data/ecg not beside the checkout")
    import pydicom.data

    paths = sorted((SHARED / "images").glob("*.png")) + sorted((SHARED / "images").glob("*.jpg"))
    paths += [SHARED / "100.hea", Path(pydicom.data.get_testdata_file("waveform_ecg.dcm"))]
    results, errors = engine.screen_paths(paths)
    assert not errors and len(results) == len(paths)


def test_rollout_with_a_wrong_checksum_turns_heatmaps_off(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(MODEL, folder)
    with open(folder / "rollout.onnx", "ab") as f:
        f.write(b"tampered")
    host = HeadlessHost(zoo=Zoo())
    eng = EcgEngine(host)
    eng.use_handle(host.zoo.open(folder))
    (inp,) = eng.read(SAMPLES / "ecg-demo-1.png")
    r = eng.screen(inp)
    assert r.heatmap is None and r.label in CLASSES
    assert any("sha256" in n.text for n in host.notices)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "ecg", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_cli_screen_json_and_bad_input(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    r = _cli("screen", str(SAMPLES), str(bad), "--json")
    assert r.returncode == 1, r.stderr  # the batch goes on; exit 1 says some input failed
    rows = json.loads(r.stdout)
    assert len(rows) == 4 and {"file", "label", "probabilities", "model", "uncertain"} <= set(rows[0])
    assert all(row["model"] == "ecg-screen-vit" and set(row["probabilities"]) <= set(CLASSES) for row in rows)
    (line,) = r.stderr.strip().splitlines()
    assert "skipped" in line and line.count("broken.png") == 1
    r = _cli("screen", str(bad))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("vitascope:") and "Traceback" not in r.stderr
    r = _cli("screen", str(SAMPLES), "--json")
    assert r.returncode == 0, r.stderr


def test_cli_render_simulate_and_deid(tmp_path):
    r = _cli("simulate", "--label", "myocardial_infarction", "--seed", "3", "--out", str(tmp_path / "rec"))
    assert r.returncode == 0, r.stderr
    r = _cli("render", str(tmp_path / "rec.hea"), "--out", str(tmp_path / "rec.png"), "--layout", "6x2")
    assert r.returncode == 0, r.stderr
    import cv2

    img = cv2.imread(str(tmp_path / "rec.png"))
    assert img is not None and img.shape[1] > 1000
    r = _cli("render", str(SAMPLES / "ecg-demo-1.png"), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "no waveform" in r.stderr and "Traceback" not in r.stderr
    import pydicom.data

    src = pydicom.data.get_testdata_file("waveform_ecg.dcm")
    r = _cli("deid", src, str(tmp_path / "out.dcm"))
    assert r.returncode == 0, r.stderr
    import pydicom

    ds, orig = pydicom.dcmread(tmp_path / "out.dcm"), pydicom.dcmread(src)
    for key in ("PatientBirthDate", "InstitutionName", "StudyDate", "StudyInstanceUID", "SOPInstanceUID"):
        assert ds.get(key) != orig.get(key), key  # removed or replaced (PS3.15 dummy values)
    assert ds.PatientIdentityRemoved == "YES"
