"""De-identified DICOM export: PS3.15 Annex E Basic Application Level Confidentiality Profile (the standard's
Table E.1-1 as shipped by Kitware's dicom-anonymizer), applied at every sequence depth, waveform samples untouched.

Waveform annotations (0040,B020) are X/D in the profile, so by default they are removed: machine statements and
measurements may carry free text. `keep_waveform_annotations=True` keeps a cleaned copy instead: coded measurements
(concept code + numeric value + units), fiducial points and coded statements; free-text statements are kept only
when they contain no removed identifying value and no date- or number-like run (an ID, a date, a phone number)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from app.core.errors import BadInput, VitascopeError

log = logging.getLogger(__name__)

TABLE_EDITION = "dicomfields_2026c"
PROFILE = "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile"
WELL_KNOWN_UID = "1.2.840.10008."  # SOP classes, transfer syntaxes, coding schemes: not identifying
DUMMY = {"DA": "00010101", "DT": "00010101010101.000000+0000", "TM": "000000.00"}
_ANNOTATION_KEEP = {  # the elements a cleaned annotation item may keep
    "ConceptNameCodeSequence", "ConceptCodeSequence", "MeasurementUnitsCodeSequence", "NumericValue",
    "ReferencedWaveformChannels", "TemporalRangeType", "ReferencedSamplePositions", "ReferencedTimeOffsets",
    "AnnotationGroupNumber", "UnformattedTextValue",
}
_CODE_KEEP = {"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning", "LongCodeValue",
              "URNCodeValue"}
_RISKY_TEXT = re.compile(r"\d{4,}|\d{1,2}\s*[/.\-]\s*\d{1,2}\s*[/.\-]\s*\d{2,4}|@|\b\d{1,2}:\d{2}\b")


@dataclass
class Report:
    """What `deidentify_dicom` did: tags removed / replaced (keyword paths), the annotation decision, warnings."""

    src: Path
    dst: Path
    profile: str
    table_edition: str
    removed: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    annotations: str = "none in the file"
    residual_fixes: int = 0  # values the table missed (nested dates, UIDs, names) that the safety pass changed
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.dst.name}: {len(self.removed)} removed, {len(self.replaced)} replaced; waveform annotations: "
                f"{self.annotations}" + (f"; {len(self.warnings)} warning(s)" if self.warnings else ""))


def _library() -> tuple[Any, Any, Any]:
    try:
        from dicomanonymizer import simpledicomanonymizer as sda
        from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
    except ImportError as e:  # pragma: no cover - a broken install
        raise VitascopeError("de-identification needs the dicom-anonymizer package (pip install "
                             "dicom-anonymizer)") from e
    return sda, dicom_anonymization_database_selector, sda.initialize_actions


def _flatten(ds: Any, prefix: str = "") -> dict[str, Any]:
    """keyword path → comparable value, for every element at every depth (bulk data by length)."""
    out: dict[str, Any] = {}
    for elem in ds:
        name = prefix + (elem.keyword or str(elem.tag))
        if elem.VR == "SQ":
            out[name] = f"<{len(elem.value)} items>"
            for i, item in enumerate(elem.value):
                out.update(_flatten(item, f"{name}[{i}]."))
        elif elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            out[name] = ("bytes", len(elem.value or b""), hash(bytes(elem.value or b"")))
        else:
            out[name] = str(elem.value)
    return out


def _waveform_bytes(ds: Any) -> list[bytes]:
    return [bytes(item["WaveformData"].value) for item in ds.get("WaveformSequence", None) or []
            if "WaveformData" in item]


def _text_values(ds: Any) -> set[str]:
    """Identifying strings that the profile removes (names, IDs, institution): free text must not repeat them."""
    keys = ("PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "InstitutionName",
            "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
            "RequestingPhysician", "AccessionNumber", "AdmissionID", "StationName", "DeviceSerialNumber", "StudyID",
            "NameOfPhysiciansReadingStudy")
    found: set[str] = set()
    for key in keys:
        v = ds.get(key)
        if v is None:
            continue
        for part in re.split(r"[\^\\,\s]+", str(v)):
            if len(part) >= 3 and part.upper() not in ("ANONYMOUS", "NONE"):
                found.add(part.upper())
    return found


def _clean_code_items(seq: Any) -> None:
    for item in seq:
        for elem in list(item):
            if elem.keyword not in _CODE_KEEP:
                del item[elem.tag]


def _clean_annotations(seq: Any, identifying: set[str]) -> tuple[list[Any], int, int]:
    """Cleaned copies of the annotation items; counts of free-text statements kept and dropped."""
    from pydicom.dataset import Dataset

    kept, texts_kept, texts_dropped = [], 0, 0
    for item in seq:
        new = Dataset()
        for elem in item:
            if elem.keyword not in _ANNOTATION_KEEP:
                continue
            if elem.keyword == "UnformattedTextValue":
                text = str(elem.value or "")
                words = {w.upper() for w in re.split(r"\W+", text) if len(w) >= 3}
                if _RISKY_TEXT.search(text) or words & identifying:
                    texts_dropped += 1
                    continue
                texts_kept += 1
            new.add(elem)
            if elem.VR == "SQ":
                _clean_code_items(elem.value)
        if any(e.keyword not in ("ReferencedWaveformChannels", "AnnotationGroupNumber") for e in new):
            kept.append(new)
    return kept, texts_kept, texts_dropped


def _datasets(ds: Any) -> list[Any]:
    """Every dataset nested in `ds` (not `ds` itself), parents before children."""
    out = []
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                out.append(item)
                out.extend(_datasets(item))
    return out


def deidentify_dicom(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
                     keep_waveform_annotations: bool = False) -> Report:
    """Write a de-identified copy of the DICOM file `src` to `dst` (atomically; `dst` must differ from `src`).

    Table E.1-1 actions (edition 2026c: D dummy, Z empty, X remove, U consistent new UID; private tags removed)
    are applied at the top level and inside every sequence; a safety pass then replaces any date/time, person name
    or non-standard UID the table missed. PatientIdentityRemoved, DeidentificationMethod(+CodeSequence 113100) and
    LongitudinalTemporalInformationModified are set. The waveform samples are verified unchanged and the output is
    read back with pydicom before it replaces `dst`. Non-DICOM or damaged input raises BadInput."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.errors import InvalidDicomError
    from pydicom.sequence import Sequence

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise BadInput(f"{src}: no such file")
    if dst.exists() and dst.resolve() == src.resolve():
        raise BadInput(f"{dst}: refusing to overwrite the original with its de-identified copy")
    try:
        ds = pydicom.dcmread(src)
        if "SOPClassUID" not in ds:
            raise BadInput(f"{src}: not a usable DICOM object (no SOP Class UID)")
        before = _flatten(ds)
        samples = _waveform_bytes(ds)
    except InvalidDicomError as e:
        raise BadInput(f"{src}: not a DICOM file ({e})") from e
    except BadInput:
        raise
    except Exception as e:  # pydicom raises many kinds on truncated or damaged files
        raise BadInput(f"{src}: damaged DICOM file ({e.__class__.__name__}: {e})") from e

    sda, selector, initialize = _library()
    report = Report(src, dst, PROFILE, TABLE_EDITION)
    identifying = _text_values(ds)

    # ECG decisions first, so that the table's dummy-value actions do not fill these sequences with "ANONYMIZED".
    annotations = ds.get("WaveformAnnotationSequence")
    kept: list[Any] = []
    if annotations is not None:
        n = len(annotations)
        del ds["WaveformAnnotationSequence"]
        if keep_waveform_annotations:  # an allow-list clean, kept out of the table pass (which would blank text)
            kept, t_kept, t_dropped = _clean_annotations(annotations, identifying)
            report.annotations = (f"kept {len(kept)} of {n} items cleaned (coded measurements, fiducials, "
                                  f"{t_kept} statements); {t_dropped} free-text statements dropped")
        else:
            report.annotations = f"removed ({n} items: statements and measurements), per the profile"
    if "AcquisitionContextSequence" in ds:  # X/Z, Type 2 in the ECG IODs: Z = present with no items
        ds.AcquisitionContextSequence = Sequence([])
    if "PixelData" in ds:
        report.warnings.append("pixel data is not cleaned: burned-in text (names, dates) may remain in the image")

    edition = lambda: initialize(TABLE_EDITION)  # noqa: E731 - the library wants a zero-argument factory
    skip = {(0x0040, 0x0555): sda.keep}
    try:
        for nested in _datasets(ds):
            sda.anonymize_dataset(nested, dict(skip), True, edition)
        sda.anonymize_dataset(ds, dict(skip), True, edition)
    except NotImplementedError as e:
        raise BadInput(f"{src}: cannot de-identify an element ({e})") from e

    report.residual_fixes = _safety_pass(ds, sda)
    if kept:
        ds.WaveformAnnotationSequence = Sequence(kept)
    ds.PatientIdentityRemoved = "YES"
    method = ["PS3.15 E.1 Basic Profile, Table E.1-1 " + TABLE_EDITION.split("_")[-1],
              f"Vitascope + dicom-anonymizer {_version('dicom-anonymizer')}",
              "waveform annotations cleaned" if keep_waveform_annotations else "waveform annotations removed"]
    ds.DeidentificationMethod = method
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    if getattr(ds, "file_meta", None) is not None and "SOPInstanceUID" in ds:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

    if _waveform_bytes(ds) != samples:  # never expected: the table has no waveform attributes
        raise VitascopeError(f"{src}: de-identification changed the waveform samples; nothing was written")
    after = _flatten(ds)
    gone = [k for k in before if k not in after]
    gone_sq = [k for k in gone if str(before[k]).endswith(" items>")]
    report.removed = sorted(k for k in gone if not any(k.startswith(q + "[") for q in gone_sq))
    report.replaced = sorted(k for k in before if k in after and after[k] != before[k])
    _write_checked(ds, dst, samples)
    log.info("de-identified %s → %s", src, dst)
    return report


def _safety_pass(ds: Any, sda: Any) -> int:
    """Replace what the table left: any date/time (no longitudinal option is offered), person name, or UID outside
    the standard's own root. Returns how many values changed."""
    fixes = 0
    keep_uids = {"SOPClassUID", "ReferencedSOPClassUID", "TransferSyntaxUID", "MediaStorageSOPClassUID",
                 "CodingSchemeUID", "ImplementationClassUID"}

    def visit(dataset: Any, elem: Any) -> None:
        nonlocal fixes
        if elem.tag.group == 0x0012:  # the de-identification record itself
            return
        if elem.VR in DUMMY and elem.value not in ("", None, DUMMY[elem.VR]):
            elem.value = DUMMY[elem.VR]
            fixes += 1
        elif elem.VR == "PN" and str(elem.value or "") not in ("", "ANONYMIZED"):
            elem.value = ""
            fixes += 1
        elif elem.VR == "UI" and elem.keyword not in keep_uids and elem.value:
            values = list(elem.value) if elem.VM > 1 else [elem.value]
            new = [v if str(v).startswith(WELL_KNOWN_UID) or v in sda.dictionary.values() else sda.get_UID(v)
                   for v in values]
            if new != values:
                elem.value = new if elem.VM > 1 else new[0]
                fixes += 1

    ds.walk(visit)
    return fixes


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _write_checked(ds: Any, dst: Path, samples: list[bytes]) -> None:
    """Save to a temp file beside `dst`, read it back (dataset + waveform), then os.replace; never half-written."""
    import pydicom

    from .report import atomic_write

    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VitascopeError(f"{dst}: cannot write here ({e.strerror or e})") from e

    def same_waveform(tmp: Path) -> None:
        if _waveform_bytes(pydicom.dcmread(tmp)) != samples:
            raise VitascopeError(f"{dst}: the written copy does not read back the same waveform; nothing was written")

    atomic_write(dst, lambda f: ds.save_as(f, enforce_file_format=True), check=same_waveform)
