"""De-identified DICOM export on pydicom's real 12-lead ECG (waveform_ecg.dcm, Mortara, partly de-identified):
identifiers, dates and UIDs gone, samples unchanged, the annotation decision, bad input as one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from app.core.errors import BadInput, VitascopeError
from plugins.ecg.deid import deidentify_dicom

SRC = Path(get_testdata_file("waveform_ecg.dcm"))


def _all_values(ds: pydicom.Dataset) -> list[tuple[str, str, str]]:
    out = []
    for elem in ds.iterall():
        if elem.VR != "SQ" and elem.tag != (0x5400, 0x1010):
            out.append((elem.keyword, elem.VR, str(elem.value)))
    return out


def test_basic_profile_on_the_real_ecg(tmp_path):
    orig = pydicom.dcmread(SRC)
    assert orig.PatientBirthDate and orig.InstitutionName and orig.StudyDate  # the fixture is only partly clean
    dst = tmp_path / "out.dcm"
    report = deidentify_dicom(SRC, dst)
    out = pydicom.dcmread(dst)  # still readable

    assert out.get("PatientBirthDate", "") in ("", "00010101")
    assert "InstitutionName" not in out or out.InstitutionName != orig.InstitutionName
    for elem_vr, dummy in (("DA", "00010101"), ("DT", "00010101010101.000000+0000"), ("TM", "000000.00")):
        values = {v for _, vr, v in _all_values(out) if vr == elem_vr}
        assert values <= {"", dummy}, values
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert out[key].value != orig[key].value and out[key].value.startswith("2.25.")
    assert out.SOPClassUID == orig.SOPClassUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    for key in ("PatientID", "AccessionNumber", "AdmissionID", "PatientAge", "ReferringPhysicianName"):
        assert out.get(key, "") in ("", "ANONYMIZED"), key

    # no original identifying value survives anywhere in the file's bytes
    raw = dst.read_bytes()
    for secret in ("Galliera", "19710123", "20130125", "642341", "03028041970546", "13002689",
                   orig.StudyInstanceUID, orig.SeriesInstanceUID, orig.SOPInstanceUID):
        assert secret.encode() not in raw, secret
    assert not any(e.tag.is_private for e in out.iterall())

    for i in range(len(orig.WaveformSequence)):  # samples unchanged, both groups
        np.testing.assert_array_equal(out.waveform_array(i), orig.waveform_array(i))

    assert out.PatientIdentityRemoved == "YES"
    assert "Basic Profile" in out.DeidentificationMethod[0]
    code = out.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
    assert out.LongitudinalTemporalInformationModified == "REMOVED"

    # the product decision: annotations (statements + measurements) removed by default
    assert "WaveformAnnotationSequence" not in out
    assert report.annotations.startswith("removed (77 items")
    assert "PatientBirthDate" in report.replaced and "AdmissionID" in report.removed
    assert "WaveformAnnotationSequence" in report.removed and report.dst == dst
    assert "removed" in report.summary()


def test_keeping_cleaned_annotations(tmp_path):
    report = deidentify_dicom(SRC, tmp_path / "out.dcm", keep_waveform_annotations=True)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    seq = out.WaveformAnnotationSequence
    statements = [str(it.UnformattedTextValue) for it in seq if "UnformattedTextValue" in it]
    assert statements == ["RITMO SINUSALE", "ECG NORMALE"]
    measures = {it.ConceptNameCodeSequence[0].CodeMeaning: float(it.NumericValue)
                for it in seq if "NumericValue" in it and "ConceptNameCodeSequence" in it}
    assert measures["RR Interval"] == 982 and measures["PR Interval"] == 161 and measures["QRS Duration"] == 75
    assert "kept 77 of 77" in report.annotations
    assert {v for _, vr, v in _all_values(out) if vr == "DA"} <= {"", "00010101"}
    assert "waveform annotations cleaned" in out.DeidentificationMethod


def test_risky_statements_and_nested_dates_are_cleaned(tmp_path):
    ds = pydicom.dcmread(SRC)
    ds.WaveformAnnotationSequence[0].UnformattedTextValue = "Confirmed by Dr. Rossi 12/03/2013"
    ds.WaveformAnnotationSequence[1].UnformattedTextValue = "ANONYMOUS GALLIERA referral"
    ds.WaveformSequence[0].AcquisitionDateTime = "20130125105919"  # a date where the table does not look
    ds.WaveformSequence[0].ReferringPhysicianName = "Rossi^Mario"
    src = tmp_path / "src.dcm"
    ds.save_as(src)
    report = deidentify_dicom(src, tmp_path / "out.dcm", keep_waveform_annotations=True)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    texts = [str(it.UnformattedTextValue) for it in out.WaveformAnnotationSequence if "UnformattedTextValue" in it]
    assert texts == [] and "2 free-text statements dropped" in report.annotations
    assert out.WaveformSequence[0].AcquisitionDateTime == "00010101010101.000000+0000"
    assert str(out.WaveformSequence[0].get("ReferringPhysicianName", "")) in ("", "ANONYMIZED")
    assert b"Rossi" not in (tmp_path / "out.dcm").read_bytes()


def test_bad_inputs_are_one_line_errors(tmp_path):
    png = tmp_path / "ecg.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    truncated = tmp_path / "cut.dcm"
    truncated.write_bytes(SRC.read_bytes()[:5000])
    cases = [(png, "not a DICOM file"), (truncated, "damaged DICOM file"), (tmp_path / "missing.dcm", "no such file")]
    for src, message in cases:
        with pytest.raises(BadInput, match=message) as err:
            deidentify_dicom(src, tmp_path / "out.dcm")
        assert "\n" not in str(err.value)
    assert not (tmp_path / "out.dcm").exists()
    copy = tmp_path / "same.dcm"
    copy.write_bytes(SRC.read_bytes())
    with pytest.raises(BadInput, match="refusing to overwrite the original"):
        deidentify_dicom(copy, copy)


def test_unwritable_destination_leaves_nothing(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    with pytest.raises(VitascopeError, match="cannot write") as err:
        deidentify_dicom(SRC, blocker / "out.dcm")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]
