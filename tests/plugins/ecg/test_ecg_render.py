"""The ECG renderer: exact paper scale (10 mm/mV, 25 mm/s at the stated dpi), every layout and style, rhythm strips
for records with fewer than 12 leads, determinism, no class-revealing header text, speed."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.ecg.render import LAYOUTS, STYLES, px_per_mm, px_per_mv, px_per_s, render, render_with_layout
from plugins.ecg.types import STANDARD_LEADS, EcgRecord
from plugins.ecg.waveform import simulate


def dark_center_rows(img: np.ndarray, col: int, y0: int, y1: int) -> float:
    g = img[y0:y1, col].astype(int).sum(axis=1)
    rows = np.flatnonzero(g < 3 * 128)
    assert rows.size, "no trace pixels in this column"
    return y0 + float(rows.mean())


@pytest.mark.parametrize("dpi", [72, 100, 150, 200])
def test_calibration_pulse_is_10_mm_high(dpi):
    rec = simulate("normal", 1)
    img, info = render_with_layout(rec, "3x4+II", "clean", dpi, grid="none", header={})
    assert info.px_per_mv == pytest.approx(dpi / 25.4 * 10) == px_per_mv(dpi)
    assert info.px_per_s == pytest.approx(dpi / 25.4 * 25) == px_per_s(dpi)
    x0, ytop, x1, ybase = info.cal_boxes[0]
    top = dark_center_rows(img, (x0 + x1) // 2, ytop - 10, ybase + 10)
    base = dark_center_rows(img, x0 - int(round(0.6 * px_per_mm(dpi))), ytop - 10, ybase + 10)
    assert base - top == pytest.approx(10 * px_per_mm(dpi), abs=1.0)


@pytest.mark.parametrize("dpi", [100, 150])
def test_25_mm_per_second(dpi):
    fs = 500.0
    sig = np.zeros((12, 5000), np.float32)
    ii = STANDARD_LEADS.index("II")
    for t in (1.0, 3.0):
        sig[ii, int(t * fs) - 2:int(t * fs) + 3] = 1.0  # 1 mV spikes 2 s apart
    rec = EcgRecord(sig, fs, STANDARD_LEADS)
    img, info = render_with_layout(rec, "12x1", "clean", dpi, grid="none", header={})
    panel = next(p for p in info.panels if p.lead == "II")
    y = int(round(panel.baseline_y - 0.8 * info.px_per_mv))  # a row crossed only by the spikes
    cols = np.flatnonzero(img[y, panel.box[0]:panel.box[2]].astype(int).sum(axis=1) < 3 * 128) + panel.box[0]
    left, right = cols[cols < cols.mean()].mean(), cols[cols > cols.mean()].mean()
    assert right - left == pytest.approx(2.0 * 25 * px_per_mm(dpi), abs=1.0)
    assert left - panel.x0 == pytest.approx(1.0 * info.px_per_s, abs=1.0)


def test_every_layout_and_style_renders():
    rec = simulate("myocardial_infarction", 2)
    for layout in LAYOUTS:
        for style in STYLES:
            img, info = render_with_layout(rec, layout, style, 80, seed=3, grid=None)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.shape[:2] == info.size
            assert info.layout == layout
            assert 0.02 < (img.mean(axis=2) < 128).mean() < 0.5 or style == "photographed"
    _, info = render_with_layout(rec, "3x4+II", dpi=100)
    assert len(info.panels) == 13 and [p.lead for p in info.panels[:4]] == ["I", "aVR", "V1", "V4"]
    assert [round(p.t0, 2) for p in info.panels[:4]] == [0.0, 2.5, 5.0, 7.5]  # each column the next 2.5 s
    assert info.panels[-1].lead == "II" and info.panels[-1].t1 == 10.0


def test_fewer_than_12_leads_render_as_rhythm_strips():
    rec = EcgRecord(np.random.default_rng(0).normal(0, 0.1, (2, 3600)).astype(np.float32), 360.0, ("MLII", "V5"))
    img, info = render_with_layout(rec, "3x4+II", "clean", 100)
    assert info.layout == "rhythm" and [p.lead for p in info.panels] == ["MLII", "V5"]
    assert info.panels[0].t1 - info.panels[0].t0 == 10.0


def test_grid_colours_and_determinism():
    rec = simulate("normal", 5)
    red = render(rec, grid="red", header={})
    blue = render(rec, grid="blue", header={})
    assert red[..., 0].mean() > red[..., 2].mean() and blue[..., 2].mean() > blue[..., 0].mean()
    bw = render(rec, grid="bw")
    assert np.array_equal(bw[..., 0], bw[..., 1]) and np.array_equal(bw[..., 1], bw[..., 2])
    for style in STYLES:
        a, b = render(rec, style=style, seed=7, grid=None), render(rec, style=style, seed=7, grid=None)
        assert np.array_equal(a, b)
    assert not np.array_equal(render(rec, style="scanned", seed=1), render(rec, style="scanned", seed=2))


def test_header_never_carries_class_information_by_default():
    for seed in range(20):
        _, info = render_with_layout(simulate("abnormal_heartbeat", seed), seed=seed, header=None)
        assert set(info.header) <= {"ID", "Date", "Filter"}
    _, info = render_with_layout(simulate("normal", 0), header={"ID": "X1"})
    assert info.header == {"ID": "X1"}


def test_bad_arguments():
    rec = simulate("normal", 0)
    with pytest.raises(BadInput, match="layout"):
        render(rec, layout="4x3")
    with pytest.raises(BadInput, match="style"):
        render(rec, style="oil")
    with pytest.raises(BadInput, match="grid"):
        render(rec, grid="purple")


