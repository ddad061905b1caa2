"""ECG inputs from disk — images, DICOM ECG waveforms (rendered to paper), DICOM images, WFDB records, folders —
as EcgInput items; bad files raise EcgReadError with one line naming the file, `read_many` keeps a batch going."""

from __future__ import annotations

import logging
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import BadInput, VitascopeError
from app.core.io.images import IMAGE_SUFFIXES, read_image

from .render import render
from .types import STANDARD_LEADS, EcgInput, EcgRecord

log = logging.getLogger(__name__)

DICOM_SUFFIXES = {".dcm", ".dicom"}
WFDB_SUFFIXES = {".hea", ".dat", ".atr", ".qrs", ".mat", ".ecg", ".ann"}
DICOM_META_KEYS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "PatientAge", "StudyDate",
                   "StudyTime", "AcquisitionDateTime", "InstitutionName", "Manufacturer", "ManufacturerModelName",
                   "Modality", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                   "AccessionNumber", "ReferringPhysicianName")
# SCP-ECG lead codes (CID 3001, coding scheme SCPECG "5.6.3-9-N")
SCPECG_LEADS = {1: "I", 2: "II", 3: "V1", 4: "V2", 5: "V3", 6: "V4", 7: "V5", 8: "V6", 61: "III", 62: "aVR",
                63: "aVL", 64: "aVF"}
_UPPER = {name.upper(): name for name in STANDARD_LEADS}
UNIT_TO_MV = {"uv": 1e-3, "µv": 1e-3, "microvolt": 1e-3, "mv": 1.0, "millivolt": 1.0, "v": 1e3, "volt": 1e3,
              "nv": 1e-6, "nanovolt": 1e-6}


class EcgReadError(BadInput):
    """An ECG input that cannot be read (corrupt, truncated, unsupported); the message names the file."""


def _one_line(e: BaseException) -> str:
    s = " ".join(str(e).split())
    return f"{type(e).__name__}: {s[:160]}" if s else type(e).__name__


def lead_name(label: str) -> str:
    """A standard lead name for labels like "Lead I (Einthoven)", "I", "AVR", "MDC_ECG_LEAD_V1", "5.6.3-9-62", or
    NUL-padded codes; anything else comes back cleaned but otherwise unchanged."""
    s = str(label).replace("\x00", " ").strip()
    m = re.fullmatch(r"5\.6\.3-9-(\d+)", s)
    if m and int(m.group(1)) in SCPECG_LEADS:
        return SCPECG_LEADS[int(m.group(1))]
    core = re.sub(r"\(.*?\)", " ", s)
    core = re.sub(r"^(MDC_ECG_LEAD_|LEAD[\s_-]*)", "", core.strip(), flags=re.IGNORECASE).strip()
    core = core.replace(" ", "")
    return _UPPER.get(core.upper(), s or "?")


def _is_dicom(p: Path) -> bool:
    if p.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(p, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _wfdb_base(p: Path) -> Path | None:
    """The record path (without suffix) when `p` is a WFDB file with a header next to it."""
    if p.suffix.lower() in WFDB_SUFFIXES and p.with_suffix(".hea").is_file():
        return p.with_suffix("")
    return None


def iter_folder(path: str | Path, recursive: bool = False) -> Iterator[Path]:
    """Readable-looking files in `path`, sorted: images, DICOM files, and each WFDB record once (its .hea)."""
    root = Path(path)
    if not root.is_dir():
        raise EcgReadError(f"{root}: not a folder")
    files = sorted(root.rglob("*") if recursive else root.iterdir())
    for p in files:
        if not p.is_file() or p.name.startswith("."):
            continue
        suf = p.suffix.lower()
        if suf in IMAGE_SUFFIXES:
            yield p
        elif suf == ".hea":
            yield p
        elif suf in WFDB_SUFFIXES:
            continue  # data/annotation files of a record: read through the .hea
        elif _is_dicom(p):
            yield p


def _render_input(record: EcgRecord, source: str, kind: str, meta: dict[str, str], dpi: float,
                  layout: str) -> EcgInput:
    img = render(record, layout=layout, style="clean", dpi=dpi, seed=0, grid="red", header={})
    return EcgInput(source=source, image=img, record=record, meta=meta, kind=kind)


# --- DICOM -----------------------------------------------------------------------------------------------------

def _unit_factor(ch: Any) -> tuple[float, str]:
    seq = ch.get("ChannelSensitivityUnitsSequence")
    if seq:
        item = seq[0]
        for key in ("CodeValue", "CodeMeaning"):
            u = str(item.get(key, "")).strip().lower()
            if u in UNIT_TO_MV:
                return UNIT_TO_MV[u], str(item.get(key)).strip()
    return 1e-3, "uV (assumed)"


def _channel_label(ch: Any, k: int) -> str:
    src = ch.get("ChannelSourceSequence")
    cands = []
    if src:
        cands += [str(src[0].get("CodeValue", "")), str(src[0].get("CodeMeaning", ""))]
    cands.append(str(ch.get("ChannelLabel", "")))
    for c in cands:
        name = lead_name(c)
        if name in STANDARD_LEADS:
            return name
    for c in reversed(cands):
        if c.replace("\x00", "").strip():
            return c.replace("\x00", "").strip()
    return f"ch{k + 1}"


def pick_group(ds: Any) -> int:
    """The multiplex group to show: one labelled RHYTHM, else the longest one that is not a MEDIAN beat."""
    groups = list(ds.WaveformSequence)
    labels = [str(g.get("MultiplexGroupLabel", "")).upper() for g in groups]
    for i, lab in enumerate(labels):
        if "RHYTHM" in lab:
            return i
    cand = [i for i, lab in enumerate(labels) if "MEDIAN" not in lab] or list(range(len(groups)))

    def dur(i: int) -> float:
        g = groups[i]
        return float(g.get("NumberOfWaveformSamples", 0)) / max(float(g.get("SamplingFrequency", 1) or 1), 1e-9)

    return max(cand, key=dur)


def _dicom_waveform(ds: Any, p: Path) -> EcgRecord:
    gi = pick_group(ds)
    g = ds.WaveformSequence[gi]
    try:
        arr = np.asarray(ds.waveform_array(gi), np.float64)  # (samples, channels), in sensitivity units
    except Exception as e:  # pydicom raises several types for bad waveform data
        raise EcgReadError(f"{p}: unreadable waveform data in group {gi} ({_one_line(e)})") from None
    chans = list(g.get("ChannelDefinitionSequence", []))
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] != len(chans) or not np.isfinite(arr).all():
        raise EcgReadError(f"{p}: waveform group {gi} has shape {arr.shape} for {len(chans)} channels")
    fs = float(g.get("SamplingFrequency", 0) or 0)
    if fs <= 0:
        raise EcgReadError(f"{p}: waveform group {gi} has no sampling frequency")
    units, names = [], []
    for k, ch in enumerate(chans):
        f, u = _unit_factor(ch)
        arr[:, k] *= f
        units.append(u)
        name = _channel_label(ch, k)
        names.append(name if name not in names else f"{name}#{k + 1}")
    sig = arr.T.astype(np.float32)
    if all(n in names for n in STANDARD_LEADS):
        order = [names.index(n) for n in STANDARD_LEADS] + [i for i, n in enumerate(names) if n not in STANDARD_LEADS]
        sig, names = sig[order], [names[i] for i in order]
    meta: dict[str, Any] = {"source": str(p), "group": gi, "group_label": str(g.get("MultiplexGroupLabel", "")),
                            "units": units, "n_groups": len(ds.WaveformSequence)}
    machine, statements = {}, []
    for a in ds.get("WaveformAnnotationSequence", []):
        if a.get("UnformattedTextValue"):
            statements.append(str(a.UnformattedTextValue))
        elif a.get("NumericValue") is not None and a.get("ConceptNameCodeSequence"):
            try:
                machine[str(a.ConceptNameCodeSequence[0].CodeMeaning)] = float(a.NumericValue)
            except (TypeError, ValueError):
                pass
    if machine:
        meta["machine"] = machine
    if statements:
        meta["statements"] = statements
    return EcgRecord(signals=sig, fs=fs, leads=tuple(names), label=None, meta=meta)


def _dicom_frames(ds: Any, p: Path) -> list[np.ndarray]:
    try:
        px = ds.pixel_array
    except Exception as e:
        raise EcgReadError(f"{p}: cannot decode DICOM pixel data ({_one_line(e)})") from None
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    spp = int(ds.get("SamplesPerPixel", 1))
    nf = int(ds.get("NumberOfFrames", 1) or 1)
    frames = list(px) if nf > 1 else [px]
    out = []
    for f in frames:
        f = np.asarray(f)
        if f.dtype != np.uint8:
            f = f.astype(np.float32)
            lo, hi = float(f.min()), float(f.max())
            f = ((f - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)
        if spp == 1:
            if pi == "MONOCHROME1":
                f = 255 - f
            f = np.repeat(f[..., None], 3, axis=2)
        if f.ndim != 3 or f.shape[2] != 3:
            raise EcgReadError(f"{p}: unsupported DICOM image shape {f.shape} ({pi})")
        out.append(np.ascontiguousarray(f))
    return out


def _dicom_meta(ds: Any) -> dict[str, str]:
    meta = {}
    for k in DICOM_META_KEYS:
        v = ds.get(k)
        if v is not None and str(v).strip():
            meta[k] = str(v)
    return meta


def read_dicom(path: str | Path, render_dpi: float = 100, layout: str = "3x4+II") -> list[EcgInput]:
    import pydicom
    from pydicom.errors import InvalidDicomError

    p = Path(path)
    try:
        ds = pydicom.dcmread(p)
    except InvalidDicomError:
        raise EcgReadError(f"{p}: not a DICOM file") from None
    except Exception as e:
        raise EcgReadError(f"{p}: corrupt or truncated DICOM ({_one_line(e)})") from None
    try:
        meta = _dicom_meta(ds)
        if "WaveformSequence" in ds and len(ds.WaveformSequence):
            rec = _dicom_waveform(ds, p)
            return [_render_input(rec, f"{p}#{rec.meta['group_label'] or rec.meta['group']}", "dicom-waveform",
                                  meta, render_dpi, layout)]
        if "PixelData" in ds:
            frames = _dicom_frames(ds, p)
            if len(frames) == 1:
                return [EcgInput(source=str(p), image=frames[0], meta=meta, kind="dicom-image")]
            return [EcgInput(source=f"{p}#frame{i + 1}", image=f, meta=meta, kind="dicom-image")
                    for i, f in enumerate(frames)]
    except EcgReadError:
        raise
    except Exception as e:  # truncated sequences surface lazily, as many exception types
        raise EcgReadError(f"{p}: corrupt or truncated DICOM ({_one_line(e)})") from None
    raise EcgReadError(f"{p}: DICOM without waveform or pixel data (SOP class {ds.get('SOPClassUID', '?')})")


# --- WFDB ------------------------------------------------------------------------------------------------------

BYTES_PER_SAMPLE = {"8": 1.0, "16": 2.0, "24": 3.0, "32": 4.0, "61": 2.0, "80": 1.0, "160": 2.0, "212": 1.5,
                    "310": 4 / 3, "311": 4 / 3}


def _check_data_size(p: Path, base: Path, hdr: Any) -> None:
    """A single-file, uncompressed record whose .dat is not exactly what the header declares is refused: a header
    for the wrong file, or a file cut or padded, would otherwise be read as a different ECG without a word."""
    files = {str(f) for f in (hdr.file_name or [])}
    fmts = {str(f) for f in (hdr.fmt or [])}
    if len(files) != 1 or len(fmts) != 1 or any(hdr.byte_offset or []) or next(iter(fmts)) not in BYTES_PER_SAMPLE:
        return
    dat = base.parent / next(iter(files))
    if not dat.is_file():
        raise EcgReadError(f"{p}: the data file {dat.name} named by the header is missing")
    want = int(np.ceil(int(hdr.n_sig) * int(hdr.sig_len) * BYTES_PER_SAMPLE[next(iter(fmts))]))
    have = dat.stat().st_size
    if have != want:
        raise EcgReadError(f"{p}: {dat.name} holds {have} bytes but the header declares {want} "
                           f"({hdr.n_sig} signals x {hdr.sig_len} samples, format {next(iter(fmts))})")


def _check_fs_field(p: Path, base: Path) -> None:
    """wfdb reads an unparsable or negative sampling frequency ("rec 12 -500 5000") as its 250 Hz default: check
    the header's own field so a wrong header is refused instead of read at the wrong rate."""
    try:
        lines = base.with_suffix(".hea").read_text(errors="replace").splitlines()
    except OSError as e:
        raise EcgReadError(f"{p}: cannot read the header ({e.strerror or e})") from None
    record = next((ln.split() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), [])
    if len(record) < 3:
        return  # no frequency field: WFDB's documented default (250 Hz) applies
    token = record[2].split("/")[0]
    try:
        fs = float(token)
    except ValueError:
        raise EcgReadError(f"{p}: WFDB header sampling frequency {record[2]!r} is not a number") from None
    if not np.isfinite(fs) or fs <= 0:
        raise EcgReadError(f"{p}: WFDB header gives sampling frequency {token} Hz; it must be positive")


def read_wfdb(path: str | Path, render_dpi: float = 100, record_s: float | None = 60.0) -> EcgInput:
    """A WFDB record (by its .hea, .dat, .atr... path); the record holds at most `record_s` seconds (None: all),
    the image shows the first 10 s (rhythm strips when there are fewer than 12 standard leads)."""
    with warnings.catch_warnings():  # wfdb builds pandas tables at import with a deprecated keyword
        warnings.simplefilter("ignore")
        import wfdb

    p = Path(path)
    base = _wfdb_base(p) if p.suffix else (p if p.with_suffix(".hea").is_file() else None)
    if base is None:
        raise EcgReadError(f"{p}: no WFDB header ({p.with_suffix('.hea').name}) next to it")
    try:
        hdr = wfdb.rdheader(str(base))
        fs = float(hdr.fs)
        sig_len = int(hdr.sig_len or 0)
        if not np.isfinite(fs) or fs <= 0:
            raise EcgReadError(f"{p}: WFDB header gives sampling frequency {hdr.fs} Hz; it must be positive")
        if sig_len <= 1 or not hdr.n_sig:
            raise EcgReadError(f"{p}: WFDB header describes no samples (fs={hdr.fs}, length={hdr.sig_len})")
        _check_data_size(p, base, hdr)
        _check_fs_field(p, base)
        want = sig_len if record_s is None else min(sig_len, max(2, int(round(record_s * fs))))
        rec = wfdb.rdrecord(str(base), sampto=want, physical=True)
    except EcgReadError:
        raise
    except Exception as e:  # wfdb raises many types for bad headers/data
        raise EcgReadError(f"{p}: corrupt or truncated WFDB record ({_one_line(e)})") from None
    sig = rec.p_signal
    if sig is None or sig.ndim != 2 or sig.shape[0] < want:
        raise EcgReadError(f"{p}: WFDB record is truncated (read {0 if sig is None else sig.shape[0]} of {want} "
                           "samples)")
    sig = np.array(sig, np.float64).T
    units = [str(u) for u in (rec.units or ["mV"] * sig.shape[0])]
    for k, u in enumerate(units):
        sig[k] *= UNIT_TO_MV.get(u.strip().lower(), 1.0)
    n_nan = int(np.isnan(sig).sum())
    sig = np.nan_to_num(sig).astype(np.float32)
    names = []
    for k, s in enumerate(rec.sig_name or [f"ch{k + 1}" for k in range(sig.shape[0])]):
        name = lead_name(s)
        names.append(name if name not in names else f"{name}#{k + 1}")
    meta: dict[str, Any] = {"source": str(base), "record": base.name, "units": units, "fs": fs,
                            "full_length_s": sig_len / fs, "invalid_samples": n_nan,
                            "comments": list(rec.comments or [])}
    for ext in ("atr", "qrs"):
        if base.with_suffix("." + ext).is_file():
            try:
                with warnings.catch_warnings():  # wfdb's own pandas deprecation noise
                    warnings.simplefilter("ignore")
                    ann = wfdb.rdann(str(base), ext, sampto=want)
                meta[f"annotations_{ext}"] = dict(Counter(ann.symbol))
            except Exception as e:  # annotations are optional
                log.warning("%s.%s: annotations unreadable (%s)", base, ext, _one_line(e))
            break
    record = EcgRecord(signals=sig, fs=fs, leads=tuple(names), label=None, meta=meta)
    imeta = {"Record": base.name, "SamplingRate": f"{fs:g}", "Leads": ",".join(names)}
    if rec.comments:
        imeta["Comments"] = "; ".join(str(c) for c in rec.comments)
    return _render_input(record, str(base.with_suffix(".hea")), "wfdb", imeta, render_dpi, "3x4+II")


# --- entry points ----------------------------------------------------------------------------------------------

def read_inputs(path: str | Path, *, render_dpi: float = 100, layout: str = "3x4+II",
                record_s: float | None = 60.0) -> list[EcgInput]:
    """Every screenable item in `path` (a file or a folder). Waveforms (DICOM, WFDB) are rendered as paper ECGs at
    `render_dpi` (records with fewer than 12 standard leads as rhythm strips). Raises EcgReadError."""
    p = Path(path)
    if not p.exists():
        raise EcgReadError(f"{p}: no such file or folder")
    if not p.is_dir() and not p.is_file():
        raise EcgReadError(f"{p}: not a regular file (a pipe or device cannot be screened)")
    if p.is_dir():
        out: list[EcgInput] = []
        for f in iter_folder(p):
            out += read_inputs(f, render_dpi=render_dpi, layout=layout, record_s=record_s)
        return out
    suf = p.suffix.lower()
    if suf in IMAGE_SUFFIXES:
        try:
            img = read_image(p, color=True)
        except BadInput as e:
            raise EcgReadError(str(e)) from None
        return [EcgInput(source=str(p), image=img, kind="image")]
    if suf in WFDB_SUFFIXES or (not suf and p.with_suffix(".hea").is_file()):
        return [read_wfdb(p, render_dpi=render_dpi, record_s=record_s)]
    if _is_dicom(p):
        return read_dicom(p, render_dpi=render_dpi, layout=layout)
    raise EcgReadError(f"{p}: unsupported ECG input type {p.suffix or '(none)'}; use an image "
                       f"({', '.join(sorted(IMAGE_SUFFIXES))}), DICOM (.dcm) or a WFDB record (.hea)")


def read_many(paths: Iterable[str | Path], *, render_dpi: float = 100, layout: str = "3x4+II",
              record_s: float | None = 60.0) -> tuple[list[EcgInput], list[tuple[str, str]]]:
    """Read files and folders, collecting (path, one-line message) for every file that fails instead of stopping."""
    inputs: list[EcgInput] = []
    errors: list[tuple[str, str]] = []
    for path in paths:
        p = Path(path)
        files = list(iter_folder(p)) if p.is_dir() else [p]
        for f in files:
            try:
                inputs += read_inputs(f, render_dpi=render_dpi, layout=layout, record_s=record_s)
            except VitascopeError as e:
                errors.append((str(f), str(e)))
    return inputs, errors
