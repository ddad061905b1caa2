"""Exports of the ECG review: the worklist as CSV and a one-page PDF report per ECG (reportlab), both written
atomically (temp file + os.replace), so a full disk or an unwritable folder leaves nothing half-written."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from app.core.errors import BadInput, VitascopeError

from .review import Decision, Item, Worklist
from .types import CLASS_TITLES, CLASSES, ScreenResult

NOTICE = "Research use only — not a diagnostic device"
MEASUREMENT_ORDER = ("HR", "RR", "PR", "QRS", "QT", "QTc")
MEASUREMENT_UNITS = {"HR": "bpm"}
_CSV_SKIP = ("meta", "probabilities", "measurements", "reasons", "second_opinion")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None],
                 check: Callable[[Path], None] | None = None) -> Path:
    """Call `write(file)` on a temp file beside `path`, fsync, `check(temp path)` if given (it raises to refuse),
    then os.replace onto `path`. Any OS error (full disk, read-only or missing folder) becomes a one-line
    VitascopeError and the temp file is removed."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(f"{path}: is a folder, not a file name")
    if not path.parent.is_dir():
        raise VitascopeError(f"{path}: cannot write, the folder {path.parent} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise VitascopeError(f"{path}: cannot write in {path.parent} ({e.strerror or e})") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise VitascopeError(f"{path}: could not be written ({e.strerror or e}); nothing was saved") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# CSV -------------------------------------------------------------------------------------------------------------
def _safe_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula (=, +, -, @) gets a leading apostrophe; numbers stay."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_columns() -> list[str]:
    base = [f.name for f in fields(Item) if f.name not in _CSV_SKIP]
    return (base + [f"p_{c}" for c in CLASSES] + [f"m_{m}" for m in MEASUREMENT_ORDER]
            + ["uncertain_reasons", "second_opinion_label", "second_opinion_json"]
            + ["probabilities_json", "measurements_json", "meta_json"])


def export_csv(worklist: Worklist, path: str | os.PathLike[str], items: list[Item] | None = None) -> Path:
    """Every worklist column (one row per item, latest decision included: action, label, reviewer, time, comment),
    one probability column per class and the main measurements; UTF-8 with BOM so spreadsheets read accents."""
    rows = worklist.items() if items is None else items
    columns = csv_columns()

    def write(f: IO[bytes]) -> None:
        text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
        w = csv.writer(text)
        w.writerow(columns)
        for it in rows:
            d = {c.name: getattr(it, c.name) for c in fields(Item) if c.name not in _CSV_SKIP}
            d.update({f"p_{c}": it.probabilities.get(c) for c in CLASSES})
            d.update({f"m_{m}": it.measurements.get(m) for m in MEASUREMENT_ORDER})
            d["uncertain_reasons"] = "; ".join(it.reasons)
            d["second_opinion_label"] = (it.second_opinion or {}).get("label")
            d["second_opinion_json"] = json.dumps(it.second_opinion, ensure_ascii=False) if it.second_opinion else ""
            d["probabilities_json"] = json.dumps(it.probabilities) if it.probabilities else ""
            d["measurements_json"] = json.dumps(it.measurements) if it.measurements else ""
            d["meta_json"] = json.dumps(it.meta, ensure_ascii=False) if it.meta else ""
            w.writerow(["" if d[c] is None else _safe_cell(d[c]) for c in columns])
        text.flush()
        text.detach()

    return atomic_write(path, write)


# PDF -------------------------------------------------------------------------------------------------------------
def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, box: tuple[int, int, int, int] | None = None,
                    alpha: float = 0.45) -> np.ndarray:
    """The image (H, W, 3) uint8 with the heatmap (h, w) in [0, 1] blended on top in a warm colour map; `box`
    (x0, y0, x1, y1) is the image region the heatmap covers (the model's crop), the whole image when None."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3].astype(np.float32)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = box if box is not None else (0, 0, w, h)
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(w, int(x1)), min(h, int(y1))
    if x1 <= x0 or y1 <= y0:
        return img.astype(np.uint8)
    hm = np.clip(np.nan_to_num(np.asarray(heatmap, np.float32)), 0, 1)
    ys = np.minimum((np.arange(y1 - y0) * hm.shape[0] / (y1 - y0)).astype(int), hm.shape[0] - 1)
    xs = np.minimum((np.arange(x1 - x0) * hm.shape[1] / (x1 - x0)).astype(int), hm.shape[1] - 1)
    m = hm[ys][:, xs][..., None]
    colour = np.concatenate([np.clip(3 * m, 0, 1), np.clip(3 * m - 1, 0, 1), np.clip(3 * m - 2, 0, 1)], axis=2) * 255
    region = img[y0:y1, x0:x1]
    a = alpha * m
    img[y0:y1, x0:x1] = region * (1 - a) + colour * a
    return np.clip(img, 0, 255).astype(np.uint8)


def _fmt_measure(name: str, value: float) -> str:
    unit = MEASUREMENT_UNITS.get(name, "ms")
    return f"{name} {value:.0f} {unit}"


def write_pdf_report(path: str | os.PathLike[str], image: np.ndarray, result: ScreenResult | None,
                     decision: Decision | None = None, fields: dict[str, Any] | None = None,
                     heatmap: np.ndarray | None = None, heatmap_box: tuple[int, int, int, int] | None = None,
                     generated_at: datetime | None = None) -> Path:
    """One A4-landscape page: the ECG image (with the heatmap blended in when given), the model's label and
    probabilities, measurements, the reviewer's decision, model id + sha256, the date, and the research-use notice.
    `fields` are the item's identifying fields (patient, study date, file) printed in the header."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.size == 0:
        raise BadInput(f"{path}: the ECG image has shape {img.shape}, expected (H, W, 3)")
    if img.dtype != np.uint8:
        img = np.clip(np.nan_to_num(img.astype(np.float32)), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if heatmap is not None:
        img = heatmap_overlay(img, heatmap, heatmap_box)
    when = (generated_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    fields = {k: _latin(str(v)) for k, v in (fields or {}).items() if v not in (None, "")}

    from PIL import Image

    pil = Image.fromarray(np.ascontiguousarray(img))

    def draw(f: IO[bytes]) -> None:
        pw, ph = landscape(A4)
        c = canvas.Canvas(f, pagesize=(pw, ph), pageCompression=0)
        c.setTitle("ECG screening report")
        c.setAuthor("Vitascope")
        c.setSubject(NOTICE)
        margin = 12 * mm
        y = ph - margin
        c.setFillColor(colors.Color(0.75, 0.1, 0.1))
        c.setFont("Helvetica-Bold", 11)
        c.drawString(margin, y - 4, NOTICE)
        c.setFillColor(colors.black)
        c.setFont("Helvetica-Bold", 15)
        c.drawRightString(pw - margin, y - 4, "ECG screening report")
        y -= 18
        c.setFont("Helvetica", 8.5)
        header = "   ".join(f"{k}: {v}" for k, v in fields.items())
        for line in _wrap(header, 190)[:3]:
            c.drawString(margin, y, line)
            y -= 11
        # image: full width, at most ~60 % of the page height, aspect kept
        box_w, box_h = pw - 2 * margin, ph * 0.58
        h, w = img.shape[:2]
        s = min(box_w / w, box_h / h)
        iw, ih = w * s, h * s
        y_img = y - 4 - ih
        c.drawImage(ImageReader(pil), margin, y_img, iw, ih)
        c.setStrokeColor(colors.grey)
        c.rect(margin, y_img, iw, ih, stroke=1, fill=0)
        if heatmap is not None:
            c.setFont("Helvetica-Oblique", 7.5)
            c.drawString(margin, y_img - 9, "Overlay: where the model looked (attention heat map); "
                                            "it is not a localisation of disease.")
        y = y_img - 22
        col2 = margin + box_w * 0.36
        col3 = margin + box_w * 0.68
        top = y
        # column 1: model result
        y = _column_head(c, margin, y, "Model screening")
        if result is None:
            c.drawString(margin, y, "Not screened.")
        else:
            p = result.probabilities.get(result.label, 0.0)
            c.setFont("Helvetica-Bold", 9.5)
            c.drawString(margin, y, f"{CLASS_TITLES.get(result.label, result.label)} ({p:.1%})")
            c.setFont("Helvetica", 9)
            for cls in sorted(result.probabilities, key=lambda k: -result.probabilities[k]):
                y -= 12
                v = result.probabilities[cls]
                c.drawString(margin + 8, y, f"{CLASS_TITLES.get(cls, cls)}")
                c.drawRightString(col2 - 60, y, f"{v:.1%}")
                c.setFillColor(colors.Color(0.2, 0.45, 0.75))
                c.rect(col2 - 55, y, 45 * max(0.0, min(1.0, v)), 7, stroke=0, fill=1)
                c.setFillColor(colors.black)
            notes = []
            if result.uncertain:
                notes.append("UNCERTAIN - review: " + ("; ".join(result.reasons) or "no reason given"))
            if result.scope == "rhythm-only":
                notes.append("Rhythm only: MI not assessed (too few leads).")
            if result.disagreement:
                notes.append("Second opinion disagrees: " + result.disagreement)
            c.setFillColor(colors.Color(0.7, 0.3, 0.0))
            for line in [w for n in notes for w in _wrap(_latin(n), 62)][:6]:
                y -= 11
                c.drawString(margin, y, line)
            c.setFillColor(colors.black)
        # column 2: measurements
        y = _column_head(c, col2, top, "Measurements")
        meas = dict(result.measurements) if result is not None else {}
        if not meas:
            c.drawString(col2, y, "None (image input: no waveform to measure).")
        names = [m for m in MEASUREMENT_ORDER if m in meas] + sorted(m for m in meas if m not in MEASUREMENT_ORDER)
        for m in names:
            c.drawString(col2, y, _fmt_measure(m, float(meas[m])))
            y -= 12
        op = result.second_opinion if result is not None else None
        if op is not None:
            y -= 4
            c.setFont("Helvetica-Bold", 9.5)
            title = CLASS_TITLES.get(op.label or "", op.label or "not assessed")
            c.drawString(col2, y, _latin(f"Second opinion (measurements): {title}"))
            c.setFont("Helvetica", 8.5)
            lines = ([f"Rhythm: {op.rhythm}"] if op.rhythm else []) + list(op.findings) + (
                [f"Driving leads: {', '.join(op.leads)}"] if op.leads else [])
            for line in [w for n in lines for w in _wrap(_latin(n), 58)][:6]:
                y -= 11
                c.drawString(col2, y, line)
        # column 3: review
        y = _column_head(c, col3, top, "Reviewer decision")
        if decision is None:
            c.drawString(col3, y, "Not reviewed.")
        else:
            verdict = {"confirm": "Confirmed", "override": "Overridden", "uncertain": "Uncertain"}.get(
                decision.action, decision.action)
            label = CLASS_TITLES.get(decision.label or "", decision.label or "no label")
            c.setFont("Helvetica-Bold", 9.5)
            c.drawString(col3, y, f"{verdict}: {label}")
            c.setFont("Helvetica", 9)
            y -= 12
            c.drawString(col3, y, _latin(f"by {decision.reviewer}, {decision.at[:16].replace('T', ' ')} UTC"))
            for line in _wrap(_latin(decision.comment), 60)[:5]:
                y -= 12
                c.drawString(col3, y, line)
        # footer
        c.setFont("Helvetica", 7.5)
        c.setFillColor(colors.Color(0.3, 0.3, 0.3))
        if result is not None:
            c.drawString(margin, margin + 10, f"Model {result.model_id}  sha256 {result.model_sha256}")
        c.drawString(margin, margin, f"Generated {when} by Vitascope. {NOTICE}. "
                                     "Computer interpretation needs physician over-reading.")
        c.showPage()
        c.save()

    return atomic_write(path, draw)


def _latin(text: str) -> str:
    """What the PDF's standard fonts can show (Windows-1252): accents are dropped where needed (Ż → Z), other
    characters become "?" rather than empty boxes."""
    out = []
    for ch in text:
        try:
            ch.encode("cp1252")
            out.append(ch)
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            try:
                base.encode("cp1252")
                out.append(base or "?")
            except UnicodeEncodeError:
                out.append("?")
    return "".join(out)


def _column_head(c: Any, x: float, y: float, title: str) -> float:
    """Draws a column's bold title at (x, y), leaves the body font set; returns the y of the first body line."""
    c.setFont("Helvetica-Bold", 10.5)
    c.drawString(x, y, title)
    c.setFont("Helvetica", 9)
    return y - 14


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for para in (text or "").splitlines():
        line = ""
        for word in para.split():
            if len(line) + len(word) + 1 > width and line:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        if line:
            out.append(line)
    return out
