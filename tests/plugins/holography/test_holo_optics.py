"""Optics presets and the stream-vs-card comparison."""

from __future__ import annotations

import pytest

from app.core.errors import BadInput
from plugins.holography.optics import PRESETS, Optics, optics_mismatch, preset


def test_presets_match_the_issue():
    d = preset("dhm-offaxis-10x")
    assert d.optics.mode == "offaxis" and d.optics.wavelength_m == 666e-9 and d.optics.pixel_size_m == 0.5e-6
    assert d.optics.na == 0.25 and d.na_range == (0.2, 0.3) and d.optics.z_range_m == (-46e-6, 46e-6)
    assert d.sizes == (512, 1024) and d.carrier_cpp_range == (0.15, 0.3)
    i = preset("inline-lensless")
    assert i.optics.mode == "inline" and i.optics.wavelength_m == 630e-9 and i.optics.pixel_size_m == 1e-6
    assert i.optics.z_range_m == (1e-3, 20e-3)
    assert set(PRESETS) == {"dhm-offaxis-10x", "inline-lensless"}


def test_mismatch_names_each_difference():
    card = preset("dhm-offaxis-10x").optics
    assert optics_mismatch(card, card) == []
    stream = card.with_(wavelength_m=633e-9, pixel_size_m=0.345e-6, mode="inline", z_range_m=(-80e-6, 80e-6))
    diffs = optics_mismatch(stream, card)
    assert len(diffs) == 4
    assert any("wavelength 633 nm vs 666 nm" in d for d in diffs)
    assert any("pixel size" in d for d in diffs) and any("mode inline vs offaxis" in d for d in diffs)
    assert any("z range" in d for d in diffs)
    assert optics_mismatch(card.with_(wavelength_m=667e-9), card) == []  # within tolerance


def test_bad_optics_are_one_line_errors():
    with pytest.raises(BadInput, match="missing optics pixel_size_m"):
        Optics.from_dict({"mode": "inline", "wavelength_m": 6e-7}, source="x.tif")
    with pytest.raises(BadInput, match="µm or nm"):
        Optics("inline", 633.0, 1e-6)
    with pytest.raises(BadInput, match="mode"):
        Optics("holo", 6e-7, 1e-6)
    o = Optics.from_dict(preset("dhm-offaxis-10x").optics.to_dict())
    assert o == preset("dhm-offaxis-10x").optics
