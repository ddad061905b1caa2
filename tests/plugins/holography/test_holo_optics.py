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


@pytest.mark.parametrize("change, words", [
    ({"wavelength_m": 6.66e-7 + 1e-9j}, "wavelength_m must be a real number"),
    ({"wavelength_m": [6.66e-7, 5e-7]}, "wavelength_m must be a real number"),
    ({"wavelength_m": "666e-9"}, "wavelength_m must be a real number"),
    ({"pixel_size_m": True}, "pixel_size_m must be a real number"),
    ({"z_range_m": 4.6e-5}, "z_range_m must be a pair"),
    ({"z_range_m": [4.6e-5]}, "z_range_m must be a pair"),
    ({"z_range_m": "-4.6e-5,4.6e-5"}, "z_range_m must be a pair"),
    ({"carrier": [0.2]}, "carrier must be a pair"),
    ({"carrier": 0.2}, "carrier must be a pair"),
    ({"mode": ["offaxis"]}, "mode must be text"),
    ({"wavelength_m": 5e-12}, "plausible 100 nm"),
    ({"wavelength_m": 666.0}, "µm or nm"),
    ({"pixel_size_m": 5e-12}, "plausible 10 nm"),
    ({"pixel_size_m": 0.5}, "plausible 10 nm"),
    ({"na": 0.0}, "plausible 0.01"),
    ({"na": 25.0}, "plausible 0.01"),
    ({"z_range_m": [4.6e-5, -4.6e-5]}, "low < high"),
    ({"z_range_m": [-3.0, 3.0]}, "within ±1 m"),
    ({"medium_index": 0.5}, "plausible 1"),
    ({"carrier": [0.9, 0.9]}, "plausible 0.02"),
    ({"sideband": "left"}, "sideband must be one of"),
])
def test_from_dict_rejects_wrong_types_shapes_and_absurd_values_in_one_line(change, words):
    d = {**preset("dhm-offaxis-10x").optics.to_dict(), **change}
    with pytest.raises(BadInput, match=words) as e:
        Optics.from_dict(d, source="stack.h5")
    assert str(e.value).startswith("stack.h5: ") and "\n" not in str(e.value)


def test_from_dict_accepts_hdf5_and_json_shapes():
    import numpy as np

    d = {"mode": b"offaxis", "wavelength_m": np.float32(6.33e-7), "pixel_size_m": np.array(5e-7),
         "na": np.float64(0.3), "z_range_m": np.array([-2e-5, 3e-5]), "carrier": [0.1, -0.2], "sideband": -1}
    o = Optics.from_dict(d)
    assert o.mode == "offaxis" and o.z_range_m == (-2e-5, 3e-5) and o.carrier == (0.1, -0.2)
    assert o.sideband == "-1" and o.sideband_sign == -1 and isinstance(o.wavelength_m, float)
    assert Optics.from_dict(o.to_dict()) == o
    assert Optics.from_dict({**o.to_dict(), "sideband": "auto"}).sideband_sign == 1
