"""The shipped ECG model on inputs that cannot carry an answer: non-ECG photos, noise and blank pages are refused or
flagged and never get a confident answer; 1–2-lead records get a rhythm-only answer without MI; calibration and OOD
statistics are read from the card; the CLI reports all of it in JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.core.errors import VitascopeError
from app.core.host import HeadlessHost
from app.core.io.images import read_image
from app.core.zoo import Zoo
from plugins.ecg.engine import EcgEngine
from plugins.ecg.types import EcgInput

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "data"
CONFIDENT = 0.8


@pytest.fixture(scope="module")
def engine() -> EcgEngine:
    return EcgEngine(HeadlessHost(zoo=Zoo()))


def _confident(engine: EcgEngine, inp: EcgInput) -> bool:
    try:
        r = engine.screen(inp, explain=False)
    except VitascopeError:
        return False
    return max(r.probabilities.values()) >= CONFIDENT and not r.uncertain


def _photos(n: int) -> list[EcgInput]:
    files = sorted((SHARED / "retrieval" / "imagen150").glob("*/*.jpg"))
    if not files:
        pytest.skip("shared photos not available")
    out = []
    for f in files[:: len(files) // n][:n]:
        img = read_image(f)
        s = 1100 / max(img.shape[:2])  # a phone-sized photo: the size check alone must not be what refuses it
        out.append(EcgInput(str(f), cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)))
    return out


def test_the_shipped_model_is_calibrated_and_ships_ood_statistics(engine):
    t, min_conf = engine.calibration()
    assert t > 0 and 0 < min_conf < 1
    card = engine.model.card
    assert card.extra["calibration"]["ece_after"] <= card.extra["calibration"]["ece_before"]
    assert engine._ood_stats() is not None  # noqa: SLF001
    assert [o.name for o in card.outputs] == ["logits", "features"]


def test_photos_of_other_things_rarely_get_a_confident_answer(engine):
    """Measured on 150 photos: 108 refused, 31 flagged uncertain, 8 confident (bench/ecg_real.py). The target is
    zero; this guards the measured level against regressions."""
    photos = _photos(40)
    confident = [p.source for p in photos if _confident(engine, p)]
    assert len(confident) <= 4, confident


@pytest.mark.parametrize("kind", ["black", "white", "noise8", "noise16", "tiny"])
def test_blank_noise_and_tiny_pages_are_refused(engine, kind):
    rng = np.random.default_rng(0)
    img = {"black": np.zeros((800, 1100, 3), np.uint8), "white": np.full((800, 1100, 3), 255, np.uint8),
           "noise8": rng.integers(0, 256, (800, 1100, 3), dtype=np.uint8),
           "noise16": cv2.cvtColor((rng.integers(0, 65535, (800, 1100)) >> 8).astype(np.uint8), cv2.COLOR_GRAY2RGB),
           "tiny": np.zeros((3, 3, 3), np.uint8)}[kind]
    with pytest.raises(VitascopeError):
        engine.screen(EcgInput(kind, img), explain=False)


def test_a_two_lead_holter_record_gets_a_rhythm_only_answer(engine):
    rec = SHARED / "ecg" / "100.hea"
    if not rec.is_file():
        pytest.skip("MIT-BIH 100 not available")
    (inp,) = engine.read(rec)
    r = engine.screen(inp, explain=False)
    assert r.scope == "rhythm-only"
    assert set(r.probabilities) == {"normal", "abnormal_heartbeat"}
    assert r.label in ("normal", "abnormal_heartbeat")
    assert any("cannot be assessed" in why for why in r.reasons)


def test_a_single_lead_strip_with_ectopic_beats_is_not_called_mi(engine):
    from plugins.ecg.types import EcgRecord
    from plugins.ecg.waveform import simulate

    full = simulate("abnormal_heartbeat", 5)
    one = EcgRecord(signals=full.signals[1:2], fs=full.fs, leads=("II",))
    inp = EcgInput("strip", np.zeros((1, 1, 3), np.uint8), record=one, kind="wfdb")
    from plugins.ecg.render import render

    inp.image = render(one, layout="rhythm")
    r = engine.screen(inp, explain=False)
    assert "myocardial_infarction" not in r.probabilities and "history_of_mi" not in r.probabilities
    assert r.label not in ("myocardial_infarction", "history_of_mi")


def test_cli_json_carries_uncertainty_and_the_second_opinion(tmp_path):
    rec = SHARED / "ecg-real" / "ludb" / "1.hea"
    if not rec.is_file():
        pytest.skip("LUDB not available")
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((800, 1100, 3), np.uint8))
    p = subprocess.run([sys.executable, "-m", "app", "ecg", "screen", str(rec), str(black), "--json"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert p.returncode == 1, p.stderr  # one input refused, the other screened
    assert len(p.stderr.strip().splitlines()) == 1 and "blank" in p.stderr and "Traceback" not in p.stderr
    (row,) = json.loads(p.stdout)
    assert {"uncertain", "reasons", "ood_score", "scope", "second_opinion", "disagreement"} <= set(row)
    assert row["scope"] == "12-lead" and row["second_opinion"]["label"] is not None
    assert row["second_opinion"]["rhythm"]


def test_a_tampered_ood_file_stops_screening_every_time(tmp_path):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(REPO / "plugins" / "ecg" / "models" / "ecg-screen-vit", folder)
    with open(folder / "ood.npz", "ab") as f:
        f.write(b"tampered")
    host = HeadlessHost(zoo=Zoo())
    for _ in range(2):  # the zoo refuses the model: never a silent fall-back to screening without the OOD check
        with pytest.raises(VitascopeError, match="ood.npz"):
            EcgEngine(host).use_handle(host.zoo.open(folder))
