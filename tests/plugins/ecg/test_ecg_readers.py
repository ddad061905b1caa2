"""ECG readers on every real file (MIT-BIH 100, ECG-Image-Kit images, pydicom's 12-lead DICOM) and on broken copies:
RHYTHM-group preference, µV→mV scaling, lead-name mapping, one-line EcgReadError naming the file, batches go on."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from app.core.errors import VitascopeError
from plugins.ecg.readers import EcgReadError, iter_folder, lead_name, pick_group, read_inputs, read_many
from plugins.ecg.types import STANDARD_LEADS

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # wfdb's pandas usage at import
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ecg"
needs_shared = pytest.mark.skipif(not (SHARED / "100.hea").is_file(), reason="shared ECG data not present")
DCM = get_testdata_file("waveform_ecg.dcm")


def one_line_naming(err: Exception, path: Path) -> None:
    s = str(err)
    assert "\n" not in s and str(path) in s and isinstance(err, VitascopeError)


@needs_shared
@pytest.mark.parametrize("name", ["100.hea", "100.dat", "100.atr"])
def test_wfdb_record_by_any_of_its_files(name):
    import wfdb

    (inp,) = read_inputs(SHARED / name)
    assert inp.kind == "wfdb" and inp.source.endswith("100.hea")
    rec = inp.record
    assert rec.leads == ("MLII", "V5") and rec.fs == 360.0 and rec.signals.shape == (2, 60 * 360)
    ref = wfdb.rdrecord(str(SHARED / "100"), sampto=600).p_signal.T
    np.testing.assert_allclose(rec.signals[:, :600], ref, atol=1e-5)  # already mV
    assert inp.image.ndim == 3 and inp.image.shape[0] < inp.image.shape[1]  # two rhythm strips: a short page
    assert rec.meta["annotations_atr"]["N"] > 50 and inp.meta["Record"] == "100"


@needs_shared
def test_images_and_folders():
    imgs = sorted(p for p in (SHARED / "images").iterdir() if p.suffix in (".png", ".jpg"))
    inputs = read_inputs(SHARED / "images")
    assert [Path(i.source).name for i in inputs] == [p.name for p in imgs]
    for inp, p in zip(inputs, imgs, strict=True):
        assert inp.kind == "image" and inp.record is None
        np.testing.assert_array_equal(inp.image, cv2.imread(str(p))[..., ::-1])
    top = list(iter_folder(SHARED))
    assert [p.name for p in top] == ["100.hea"]  # each WFDB record once
    assert len(read_inputs(SHARED)) == 1


def test_dicom_waveform_rhythm_group_in_mv_with_patient_meta():
    ds = pydicom.dcmread(DCM)
    (inp,) = read_inputs(DCM)
    assert inp.kind == "dicom-waveform" and inp.source.endswith("#RHYTHM")
    rec = inp.record
    assert rec.leads == STANDARD_LEADS and rec.fs == 1000.0 and rec.signals.shape == (12, 10000)
    np.testing.assert_allclose(rec.signals, ds.waveform_array(0).T / 1000.0, rtol=1e-6, atol=1e-6)  # µV → mV
    assert 0.5 < np.ptp(rec.signals[1]) < 5.0
    for k in ("PatientID", "PatientName", "PatientBirthDate", "StudyDate", "InstitutionName", "SOPInstanceUID"):
        assert inp.meta[k] == str(ds[k].value)
    assert rec.meta["machine"]["QRS Duration"] == 75.0 and "ECG NORMALE" in rec.meta["statements"]
    assert inp.image.shape[2] == 3 and inp.image.dtype == np.uint8


def test_rhythm_preferred_over_median_beat_whatever_the_order(tmp_path):
    ds = pydicom.dcmread(DCM)
    ds.WaveformSequence = [ds.WaveformSequence[1], ds.WaveformSequence[0]]  # MEDIAN BEAT first
    p = tmp_path / "swapped.dcm"
    ds.save_as(p)
    assert pick_group(pydicom.dcmread(p)) == 1
    (inp,) = read_inputs(p)
    assert inp.record.meta["group_label"] == "RHYTHM" and inp.record.signals.shape[1] == 10000
    # no RHYTHM label: the longest group that is not a median beat
    ds.WaveformSequence[1].MultiplexGroupLabel = "LEADS"
    ds.save_as(p)
    (inp,) = read_inputs(p)
    assert inp.record.signals.shape[1] == 10000


def test_units_and_lead_labels(tmp_path):
    ds = pydicom.dcmread(DCM)
    raw = ds.waveform_array(0)
    g = ds.WaveformSequence[0]
    for k, ch in enumerate(g.ChannelDefinitionSequence):
        ch.ChannelSensitivityUnitsSequence[0].CodeValue = "mV"
        ch.ChannelSensitivityUnitsSequence[0].CodeMeaning = "millivolt"
        ch.ChannelSourceSequence[0].CodeValue = "X"
        ch.ChannelSourceSequence[0].CodeMeaning = STANDARD_LEADS[k].upper() + "\x00\x00"
    p = tmp_path / "mv.dcm"
    ds.save_as(p)
    (inp,) = read_inputs(p)
    assert inp.record.leads == STANDARD_LEADS
    np.testing.assert_allclose(inp.record.signals, raw.T, rtol=1e-6, atol=1e-4)  # mV: no rescaling
    assert [lead_name(s) for s in ("Lead I (Einthoven)", "avr", "MDC_ECG_LEAD_V1", "5.6.3-9-62", "II\x00",
                                   " V6 ", "MLII")] == ["I", "aVR", "V1", "aVR", "II", "V6", "MLII"]


def test_dicom_image(tmp_path):
    (inp,) = read_inputs(get_testdata_file("CT_small.dcm"))
    assert inp.kind == "dicom-image" and inp.image.dtype == np.uint8 and inp.image.shape[2] == 3
    assert inp.image.std() > 5


def broken_files(tmp_path: Path) -> list[Path]:
    out = []
    png = tmp_path / "noise.png"
    png.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    ok_png = tmp_path / "ok.png"
    cv2.imwrite(str(ok_png), np.full((40, 60, 3), 200, np.uint8))
    trunc_png = tmp_path / "trunc.png"
    trunc_png.write_bytes(ok_png.read_bytes()[:40])
    b = Path(DCM).read_bytes()
    half = tmp_path / "half.dcm"
    half.write_bytes(b[: len(b) // 2])
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all" * 10)
    bad_hea = tmp_path / "bad.hea"
    bad_hea.write_text("garbage here\nxx\n")
    out += [png, trunc_png, half, junk, bad_hea]
    if (SHARED / "100.hea").is_file():
        shutil.copy(SHARED / "100.hea", tmp_path / "100.hea")
        (tmp_path / "100.dat").write_bytes((SHARED / "100.dat").read_bytes()[:5000])
        out.append(tmp_path / "100.hea")
    odd = tmp_path / "notes.xyz"
    odd.write_text("hello")
    out.append(odd)
    return out


def test_corrupt_truncated_and_unsupported_files_raise_one_line_errors(tmp_path):
    for p in broken_files(tmp_path):
        with pytest.raises(EcgReadError) as ei:
            read_inputs(p)
        one_line_naming(ei.value, p)
    with pytest.raises(EcgReadError, match="no such file"):
        read_inputs(tmp_path / "missing.png")
    lone = tmp_path / "lone.dat"
    lone.write_bytes(b"\0" * 100)
    with pytest.raises(EcgReadError, match="no WFDB header"):
        read_inputs(lone)


def test_read_many_keeps_going(tmp_path):
    bad = broken_files(tmp_path)
    inputs, errors = read_many([DCM, *bad, tmp_path / "ok.png"])
    assert [i.kind for i in inputs] == ["dicom-waveform", "image"]
    assert [e[0] for e in errors] == [str(p) for p in bad]
    assert all("\n" not in msg for _, msg in errors)
    # a folder: its good files read, its bad files reported
    inputs, errors = read_many([tmp_path])
    assert any(i.source.endswith("ok.png") for i in inputs) and len(errors) >= 4


def test_dicom_with_copied_dataset_and_no_waveform_or_pixels(tmp_path):
    ds = copy.deepcopy(pydicom.dcmread(DCM))
    del ds.WaveformSequence
    p = tmp_path / "empty.dcm"
    ds.save_as(p)
    with pytest.raises(EcgReadError, match="without waveform or pixel data"):
        read_inputs(p)
