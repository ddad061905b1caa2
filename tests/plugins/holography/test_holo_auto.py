"""The Auto method: the method a model card measured best for the stream (with or without a background), one line
saying which and why; sweep without a model; the CLI and engine plans name it."""

from __future__ import annotations

from app.core.card import ModelCard
from plugins.holography.auto import choose
from plugins.holography.engine import plan_focus
from plugins.holography.optics import preset


def _card(metrics: dict[str, float]) -> ModelCard:
    o = preset("dhm-offaxis-10x").optics
    return ModelCard(id="af", task="holo.autofocus", version="1", license="MIT", description="", sha256="0" * 64,
                     bytes=1, inputs=[], outputs=[],
                     extra={"holography": {"optics": {**o.to_dict(), "na_range": [0.2, 0.3]}}},
                     metrics=[{"name": k, "value": v} for k, v in metrics.items()])


def _m(prefix: str, **by_method: tuple[float, float, float]) -> dict[str, float]:
    out = {}
    for m, (mae, mx, ms) in by_method.items():
        out.update({f"{prefix}{m}_mae_um": mae, f"{prefix}{m}_max_um": mx, f"{prefix}{m}_ms": ms})
    return out


def test_the_most_accurate_method_unless_a_faster_one_is_as_good():
    card = _card(_m("heldout_both_", sweep=(0.5, 1.8, 10.0), vit=(4.5, 17.0, 17.0), vit_refine=(1.2, 11.5, 20.0)))
    method, why = choose(card, True)
    assert method == "sweep" and why.startswith("Auto → sweep: the most accurate on held-out microscopes")
    assert "vit+refine 1.20 µm" in why and "vit 4.50 µm" in why
    fast = _card(_m("heldout_both_", sweep=(0.50, 1.8, 20.0), vit=(4.5, 17.0, 3.0), vit_refine=(0.52, 2.5, 9.0)))
    method, why = choose(fast, True)
    assert method == "vit+refine" and "as accurate as sweep" in why and "faster" in why
    wild = _card(_m("heldout_both_", sweep=(0.50, 1.8, 20.0), vit_refine=(0.51, 9.0, 9.0)))
    assert choose(wild, True)[0] == "sweep"  # as accurate on average, but a 9 µm miss


def test_without_a_background_the_no_background_measurements_decide():
    card = _card({**_m("heldout_both_", sweep=(0.5, 1.8, 10.0), vit_refine=(0.6, 2.0, 8.0)),
                  **_m("nobg_both_", sweep=(9.0, 40.0, 10.0), vit_refine=(3.0, 12.0, 8.0))})
    assert choose(card, True)[0] == "sweep"
    method, why = choose(card, False)
    assert method == "vit+refine" and "without a background" in why
    only_bg = _card(_m("heldout_both_", sweep=(0.5, 1.8, 10.0), vit_refine=(0.6, 2.0, 8.0)))
    assert "this stream has none" in choose(only_bg, False)[1]


def test_no_model_or_no_measurements_means_sweep_with_the_reason():
    assert choose(None, True, "no model for 532 nm")[1] == "Auto → sweep: no model for 532 nm."
    assert "no held-out measurements" in choose(_card({}), True)[1]


def test_plan_focus_auto_names_the_method_and_keeps_the_card_for_its_sideband():
    o = preset("dhm-offaxis-10x").optics
    card = _card(_m("", sweep=(0.54, 1.6, 18.0), vit=(1.34, 11.4, 9.0), vit_refine=(0.56, 1.8, 16.0)))
    plan = plan_focus([card], o, "auto")
    assert plan.requested == "auto" and plan.method == "vit+refine" and plan.model == "af" and plan.card is card
    assert "held-out simulated set" in plan.reason and not plan.notes
    plan = plan_focus([], o, "auto")
    assert plan.method == "sweep" and plan.model is None and "no installed autofocus model" in plan.reason
