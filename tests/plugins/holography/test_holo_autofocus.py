"""Learned autofocus: sweep without a model, the shipped model on a small held-out set (unseen kinds and carriers),
model choice by optics, missing-model errors, preprocessing, and calibration to an installable model folder."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from app.core.card import read_card
from app.core.errors import BadInput, ModelError
from app.core.zoo import Zoo, open_folder
from plugins.holography.autofocus import (
    METHODS,
    REFINE_DEFAULTS,
    TASK,
    Autofocus,
    FocusResult,
    _planes,
    _tf,
    card_optics,
    fullband_field,
    grid_refine,
    model_field,
    preprocess_params,
    resample_field,
    select_model,
)
from plugins.holography.dataset import heldout_stacks
from plugins.holography.hdf5 import read_stack, write_stack
from plugins.holography.optics import Optics, preset
from plugins.holography.physics import simulate_stack
from plugins.holography.reconstruct import Reconstructor

MODEL_DIR = Path(__file__).resolve().parents[3] / "plugins" / "holography" / "models" / "holo-autofocus-tvit"
needs_model = pytest.mark.skipif(not (MODEL_DIR / "model.onnx").is_file(), reason="shipped autofocus model absent")


@pytest.fixture(scope="module")
def model():
    if not (MODEL_DIR / "model.onnx").is_file():
        pytest.skip("shipped autofocus model absent")
    return open_folder(MODEL_DIR, threads=2)


@pytest.fixture(scope="module")
def heldout():
    """8 frames at 512²: 2 stacks (sessions) of held-out kinds with held-out carriers."""
    return heldout_stacks(4242, 2, 4, 512)


def test_sweep_works_without_a_model(offaxis_frame):
    for kind, z, seed in (("usaf", -20e-6, 1), ("cells", 15e-6, 2)):
        holo, bg, o, _ = offaxis_frame(kind, z, size=256, seed=seed, carrier_cpp=0.27, angle_deg=-40)
        r = Autofocus(Reconstructor(o, bg), None, "sweep").predict(holo)
        assert isinstance(r, FocusResult) and r.method == "sweep" and r.ms > 0
        assert abs(r.z_m - z) < 3e-6
        assert r.curve is not None and len(r.curve[0]) == len(r.curve[1]) > 10 and r.z_vit_m is None


@pytest.mark.parametrize("method", ["vit", "vit+refine"])
def test_learned_methods_need_a_model(method, offaxis_frame):
    holo, bg, o, _ = offaxis_frame("dots", 0.0, size=128, seed=3)
    with pytest.raises(ModelError, match="needs an installed holo.autofocus model") as e:
        Autofocus(Reconstructor(o, bg), None, method).predict(holo)
    assert "\n" not in str(e.value)


def test_unknown_method_is_bad_input():
    with pytest.raises(BadInput, match="method must be one of"):
        Autofocus(Reconstructor(preset("dhm-offaxis-10x").optics), None, "magic")
    assert METHODS == ("vit", "vit+refine", "sweep")


def test_resampling_a_band_limited_field_is_exact():
    rng = np.random.default_rng(0)
    spec = np.zeros((64, 64), np.complex64)
    spec[:8, :8] = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))
    spec[-7:, -7:] = rng.normal(size=(7, 7))
    u = np.fft.ifft2(spec).astype(np.complex64)
    up = resample_field(u, 1.0e-6, 0.5e-6)
    assert up.shape == (128, 128)
    np.testing.assert_allclose(up[::2, ::2], u, atol=1e-5)
    np.testing.assert_allclose(resample_field(up, 0.5e-6, 1.0e-6), u, atol=1e-5)


def test_grid_refine_finds_focus_and_flags_a_window_that_misses_it(offaxis_frame):
    z = 18e-6
    holo, bg, o, _ = offaxis_frame("usaf", z, size=256, seed=4, carrier_cpp=0.24, angle_deg=35)
    rec = Reconstructor(o, bg)
    _, f = model_field(rec, holo, preprocess_params())
    zs = np.linspace(5e-6, 20e-6, 7)  # the recurrence H(z + dz) = H(z)·H(dz) equals per-plane transfer functions
    spec = np.fft.fft2(f)
    ref = np.fft.ifft2(np.stack([spec * _tf(f.shape, o.wavelength_m, 1e-6, -zi, 1.0, True) for zi in zs]))
    np.testing.assert_allclose(_planes(spec.astype(np.complex64), o, 1e-6, zs), ref, atol=1e-5 * np.abs(ref).max())
    p = dict(REFINE_DEFAULTS, coarse="grid")
    zr, curve, edge = grid_refine(f, o, 1e-6, z + 4e-6, p, (-46e-6, 46e-6))
    assert not edge and abs(zr - z) < 2e-6 and curve.shape == (p["n_grid"], 2)
    _, _, edge = grid_refine(f, o, 1e-6, z - 25e-6, p, (-46e-6, 46e-6))  # focus far past the window's top
    assert edge
    # the spectral coarse stage scores the whole range at once and climbs past the window to the focus
    p = dict(REFINE_DEFAULTS, coarse="spectral", spectral_trust=None)
    zr, curve, edge = grid_refine(f, o, 1e-6, z + 4e-6, p, (-46e-6, 46e-6))
    assert not edge and abs(zr - z) < 2e-6 and curve.shape == (369, 2)
    # trusted only near the model's z: 4 µm off is more than half this window, so the clipped grid decides (alike)
    zt, ct, et = grid_refine(f, o, 1e-6, z + 4e-6, dict(p, spectral_trust=0.5), (-46e-6, 46e-6))
    assert not et and abs(zt - z) < 2e-6 and ct.shape == (p["n_grid"], 2)
    assert curve[0, 0] == pytest.approx(-46e-6) and curve[-1, 0] == pytest.approx(46e-6)
    zr, _, edge = grid_refine(f, o, 1e-6, z - 25e-6, p, (-46e-6, 46e-6))
    assert not edge and abs(zr - z) < 2e-6
    zr, _, edge = grid_refine(f, o, 1e-6, z - 25e-6, dict(p, spectral_climb=False), (-46e-6, 46e-6))
    assert edge


@needs_model
def test_vit_and_refine_on_heldout_frames(model, heldout):
    errs: dict[str, list[float]] = {"vit": [], "vit+refine": []}
    for h, z, bg, attrs in heldout:
        for method in errs:
            af = Autofocus(Reconstructor(Optics.from_dict(attrs), bg), model, method)
            for frame, zi in zip(h, z, strict=True):
                r = af.predict(frame)
                assert r.method == method and r.z_vit_m is not None and r.spread_m is not None and r.ms > 0
                assert -46e-6 <= r.z_m <= 46e-6
                errs[method].append(abs(r.z_m - zi) * 1e6)
    # loose bounds around the card's held-out numbers (64 frames: vit MAE 6.1 µm, vit+refine 0.76 µm, median 0.43;
    # these 8 frames: 5.8 and 0.66): far better than guessing (z = 0 gives ≈ 23 µm), and the refinement must help
    assert np.mean(errs["vit"]) < 12.0
    assert np.mean(errs["vit+refine"]) < 2.0 and np.median(errs["vit+refine"]) < 1.0
    assert np.mean(errs["vit+refine"]) < np.mean(errs["vit"])


@needs_model
def test_select_model_matches_optics_and_says_why_not():
    card = read_card(MODEL_DIR)
    assert card.task == TASK and card_optics(card).mode == "offaxis"
    stream = preset("dhm-offaxis-10x").optics
    assert select_model([card], stream) == (card, [])
    assert select_model([card], stream.with_(na=0.28))[0] is card  # inside the card's trained NA range
    got, why = select_model([card], stream.with_(wavelength_m=532e-9))
    assert got is None and any("wavelength" in r for r in why)
    got, why = select_model([card], stream.with_(mode="inline", pixel_size_m=1e-6))
    assert got is None and any("mode" in r for r in why) and any("pixel size" in r for r in why)
    got, why = select_model([card], stream.with_(z_range_m=(-80e-6, 80e-6)))
    assert got is None and any("z range" in r for r in why)
    assert select_model([], stream) == (None, ["no holo.autofocus model is installed"])


@needs_model
def test_card_without_optics_is_a_model_error():
    card = read_card(MODEL_DIR)
    card.extra.pop("holography")
    with pytest.raises(ModelError, match="no \\[holography.optics\\]"):
        card_optics(card)
    assert select_model([card], preset("dhm-offaxis-10x").optics)[0] is None


def _tiny_stack(path: Path, n: int = 8, size: int = 256, with_z: bool = True) -> Path:
    h, z, bg, attrs = simulate_stack("dhm-offaxis-10x", n, size, seed=9, kinds=("beads", "cells"),
                                     z=np.linspace(-30e-6, 30e-6, n))
    o = Optics.from_dict(attrs)
    return write_stack(path, h, o, z if with_z else None, bg)


def test_calibrate_rejects_bad_input(tmp_path):
    from plugins.holography.calibrate import calibrate, calibrate_cmd

    no_z = _tiny_stack(tmp_path / "noz.h5", n=4, size=128, with_z=False)
    with pytest.raises(BadInput, match="no /z_m"):
        calibrate(no_z, tmp_path / "out", MODEL_DIR, steps=1)
    args = argparse.Namespace(stack=str(tmp_path / "missing.h5"), out=str(tmp_path / "o"), model=str(MODEL_DIR),
                              steps=1, seed=0)
    assert calibrate_cmd(args) == 2
    assert not (tmp_path / "o").exists()


@needs_model
def test_calibrate_without_checkpoint_is_a_model_error(tmp_path):
    import shutil

    from plugins.holography.calibrate import calibrate

    base = tmp_path / "base"
    shutil.copytree(MODEL_DIR, base, ignore=shutil.ignore_patterns("checkpoint.pt"))
    stack = _tiny_stack(tmp_path / "s.h5", n=4, size=128)
    with pytest.raises(ModelError, match="checkpoint.pt"):
        calibrate(stack, tmp_path / "out", base, steps=1)


@needs_model
def test_calibrate_end_to_end_gives_an_installable_model(tmp_path, model):
    pytest.importorskip("torch")
    from plugins.holography.calibrate import calibrate

    stack = _tiny_stack(tmp_path / "stack.h5")
    events = []
    card = calibrate(stack, tmp_path / "my-scope-af", MODEL_DIR, steps=3, seed=1, on_event=events.append)
    assert card.id == "my-scope-af" and card.task == TASK
    assert card.provenance["calibrated_from"] == "holo-autofocus-tvit" and len(card.provenance["stack_sha256"]) == 64
    assert card.metric("vit_mae_um") is not None and card.optics["wavelength_m"] == pytest.approx(666e-9)
    assert (tmp_path / "my-scope-af" / "checkpoint.pt").is_file()
    assert [e.event for e in events][0] == "started" and events[-1].event == "finished"
    # vit+refine measured on the stack: the bias from its training frames, the held-out MAE with and without it
    disk = read_card(tmp_path / "my-scope-af")
    bias = disk.extra["refine"]["bias_m"]
    assert isinstance(bias, float) and abs(bias) < 5e-6 and "training frames" in disk.provenance["refine_bias"]
    assert disk.metric("vit_refine_mae_um") is not None and disk.metric("vit_refine_mae_um_uncorrected") is not None
    assert any(e.event == "metric" and "refine_bias_um" in e.values for e in events)
    # fine-tuned with the model's own augmentations, validated on a quarter of the training frames
    assert disk.provenance["augment"] == "vflip,vroll" and disk.provenance["kept_step"] in (0, 3)
    validated = disk.provenance["frames_validation"] > 0
    assert disk.provenance["validation_mae_um"].startswith("step 0 ") == validated
    zoo = Zoo([tmp_path / "zoo"])
    installed = zoo.install(tmp_path / "my-scope-af")
    handle = zoo.open(installed.id)
    h, z, bg, attrs = heldout_stacks(5, 1, 1, 256)[0]
    r = Autofocus(Reconstructor(Optics.from_dict(attrs), bg), handle, "vit").predict(h[0])
    assert np.isfinite(r.z_m)
    got, _ = select_model([model.card, installed], read_stack(stack).optics)
    assert got is installed  # on the calibrated microscope's optics the calibrated model is preferred


@needs_model
def test_calibrate_the_smallest_stack_without_validation_frames(tmp_path):
    pytest.importorskip("torch")
    from plugins.holography.calibrate import calibrate

    card = calibrate(_tiny_stack(tmp_path / "s4.h5", n=4, size=128), tmp_path / "af4", MODEL_DIR, steps=2)
    assert card.provenance["frames_validation"] == 0 and card.provenance["kept_step"] == 2
    assert (tmp_path / "af4" / "model.onnx").is_file() and "bias_m" in read_card(tmp_path / "af4").extra["refine"]


def test_refine_bias_is_taken_only_when_it_is_clearly_there():
    from plugins.holography.calibrate import refine_bias

    rng = np.random.default_rng(0)
    off = -0.8e-6 + 0.2e-6 * rng.standard_normal(30)  # a consistent offset, as on one sample kind
    assert refine_bias(off) == pytest.approx(np.median(off))
    assert refine_bias(0.05e-6 + 0.02e-6 * rng.standard_normal(30)) == 0.0  # too small to matter
    assert refine_bias(np.concatenate([np.full(10, -1e-6), np.full(10, 1.2e-6), [0.9e-6]])) == 0.0  # no side wins
    assert refine_bias(np.zeros(0)) == 0.0


def test_a_cards_refine_bias_is_subtracted(offaxis_frame, model):
    """vit+refine returns the search's z minus the card's [refine] bias_m (what calibration writes)."""
    holo, bg, o, _ = offaxis_frame("cells", 10e-6, size=256, seed=4, carrier_cpp=0.22)
    plain = Autofocus(Reconstructor(o, bg), model, "vit+refine")
    plain.refine_params["bias_m"] = 0.0
    shifted = Autofocus(Reconstructor(o, bg), model, "vit+refine")
    shifted.refine_params["bias_m"] = 0.7e-6
    assert shifted.predict(holo).z_m == pytest.approx(plain.predict(holo).z_m - 0.7e-6, abs=1e-9)


def test_fullband_field_removes_the_small_carrier_focus_bias(offaxis_frame):
    """Carrier closer than 1.25 NA/λ: the model field (mask |c|/2, in-line |O|² leak) pulls the focus of cells by
    several µm; the full-band field (hologram − background, the whole band) with the refine defaults does not."""
    z = 12e-6
    full, model = [], []
    for kind, seed in (("cells", 2), ("cluster", 3), ("cells", 5)):
        holo, bg, o, _ = offaxis_frame(kind, z, size=256, seed=seed, carrier_cpp=0.17, angle_deg=35)
        rec = Reconstructor(o, bg)
        _, f = model_field(rec, holo, preprocess_params())
        fb = fullband_field(rec, holo, 1e-6)
        assert fb is not None and fb.shape == f.shape and fb.dtype == np.complex64
        p = dict(REFINE_DEFAULTS)
        zb, _, edge = grid_refine(fb, o, 1e-6, z + 3e-6, p, (-46e-6, 46e-6), guard_field=f)
        assert not edge
        old = dict(p, metric="tog,realness", alt_metric=None, coarse_side=0, n_grid=7, n_fine=3)
        zm, _, _ = grid_refine(f, o, 1e-6, z + 3e-6, old, (-46e-6, 46e-6))
        full.append(abs(zb - z) * 1e6)
        model.append(abs(zm - z) * 1e6)
    assert np.mean(full) < 1.0 and max(full) < 1.5  # measured 0.18–0.57 µm
    assert np.mean(model) > 2 * np.mean(full)  # measured 2.3–8.7 µm


def test_fullband_field_reuses_the_reconstructors_transform_of_the_same_frame_only(offaxis_frame):
    holo, bg, o, _ = offaxis_frame("cells", 8e-6, size=256, seed=4, carrier_cpp=0.22)
    other, _, _, _ = offaxis_frame("cells", -20e-6, size=256, seed=4, carrier_cpp=0.22)
    rec = Reconstructor(o, bg)
    rec.hologram_field(holo)
    cold = fullband_field(rec, holo, 1e-6, cache={})  # nothing to reuse yet (the background state is built)
    cache: dict = {}
    fullband_field(rec, holo, 1e-6, cache=cache)
    rec.hologram_field(holo)
    warm = fullband_field(rec, holo, 1e-6, cache=cache)  # rfft(frame) − rfft(background)
    assert rec._last_half is None
    np.testing.assert_allclose(warm, cold, atol=2e-4 * np.abs(cold).max())
    rec.hologram_field(other)  # a different frame object: never the other's spectrum
    np.testing.assert_allclose(fullband_field(rec, holo, 1e-6, cache=cache), cold, atol=2e-4 * np.abs(cold).max())


def test_crop_source_is_the_fullband_field_only_when_asked_and_available(offaxis_frame):
    from plugins.holography.autofocus import crop_source

    holo, bg, o, _ = offaxis_frame("cells", 8e-6, size=256, seed=4, carrier_cpp=0.22)
    pp = preprocess_params()
    for background, wanted, full in ((bg, None, False), (bg, "fullband", True), (None, "fullband", False)):
        rec = Reconstructor(o, background)
        _, f = model_field(rec, holo, pp)
        src = crop_source(rec, holo, {**pp, "crop_field": wanted} if wanted else pp, f)
        assert (src is not f) == full and src.shape == f.shape


def test_fullband_field_needs_a_background_and_an_na(offaxis_frame):
    holo, bg, o, _ = offaxis_frame("usaf", 5e-6, size=128, seed=1)
    rec = Reconstructor(o, None)
    model_field(rec, holo, preprocess_params())
    assert fullband_field(rec, holo, 1e-6) is None  # no background hologram
    rec = Reconstructor(o.with_(na=None), bg)
    model_field(rec, holo, preprocess_params())
    assert fullband_field(rec, holo, 1e-6) is None  # unknown NA: the band is unknown
    rec = Reconstructor(o, bg)
    model_field(rec, holo, preprocess_params())
    cache: dict = {}
    a = fullband_field(rec, holo, 1e-6, cache=cache)
    assert len(cache) == 1
    np.testing.assert_allclose(fullband_field(rec, holo, 1e-6, cache=cache), a, atol=1e-5)
    assert 0.5 < abs(np.mean(a)) < 1.5  # background-normalised (the bars darken the mean)


@pytest.mark.parametrize("seed, z", [(2, -14e-6), (3, 20e-6)])
def test_sweep_is_polished_on_the_fullband_field(offaxis_frame, seed, z):
    """Small carrier: the tog sweep on the model field lands 4–7 µm off on cells (measured), the polish < 1 µm."""
    holo, bg, o, _ = offaxis_frame("cells", z, size=256, seed=seed, carrier_cpp=0.17, angle_deg=-50)
    plain = Autofocus(Reconstructor(o, bg), None, "sweep")
    plain.refine_params = {**plain.refine_params, "polish_sweep": False}
    polished = Autofocus(Reconstructor(o, bg), None, "sweep")
    assert polished.refine_params["polish_sweep"] and polished.refine_params["field"] == "fullband"
    e0 = abs(plain.predict(holo).z_m - z) * 1e6
    e1 = abs(polished.predict(holo).z_m - z) * 1e6
    assert e1 < 1.2 and e1 < e0


@needs_model
def test_vit_refine_does_not_lock_onto_the_fixed_plane_of_the_live_camera(model):
    # the simulated camera's specimen at -10.7 µm: the unclipped whole-frame realness peaks near the hologram plane
    # (about -1 µm, in every frame of this stream) and once pulled vit+refine to -4.0 µm; the model says about -10.4
    from plugins.holography.sources import SimulatedCamera

    cam = SimulatedCamera(seed=0, paced=False)
    cam._i = 96
    frame = cam.read()
    z_true = frame.meta["z_true_m"]
    af = Autofocus(Reconstructor(cam.optics, cam.background), model, "vit+refine")
    assert abs(af.predict(frame.data).z_m - z_true) < 2.5e-6
    af.refine_params["spectral_trust"] = None
    assert abs(af.predict(frame.data).z_m - z_true) > 5e-6  # the hazard itself, so this test can fail
