"""The "auto" autofocus method: the method measured best on held-out microscopes for the stream's optics (the
model card's metrics, with or without a background hologram), and one line saying which and why."""

from __future__ import annotations

from typing import Any

AUTO = "auto"
CANDIDATES = ("sweep", "vit+refine", "vit")
# Card metric prefixes, most relevant first: held-out microscopes of both simulators (bench/holo_autofocus_indep.py),
# then the training simulator's held-out set. Without a background hologram the no_background measurements come
# first, falling back to those with one.
PREFIXES = {True: ("heldout_both_", ""), False: ("nobg_both_", "heldout_both_", "")}
MAE_SLACK = 1.05  # a faster method is chosen when its MAE is within this factor of the best one's
MAX_ERROR_UM = 3.0  # ... and its worst error within this (or the best method's worst, if larger)


def _key(method: str) -> str:
    return method.replace("+", "_")


def measured(card: Any, has_background: bool) -> tuple[dict[str, dict[str, float]], str]:
    """{method: {mae_um, max_um, ms}} from the first metric set of PREFIXES the card has for all its methods'
    MAE, and the prefix used ('' when none)."""
    for prefix in PREFIXES[has_background]:
        got: dict[str, dict[str, float]] = {}
        for m in CANDIDATES:
            vals = {k: card.metric(f"{prefix}{_key(m)}_{k}") for k in ("mae_um", "max_um", "ms")}
            if vals["mae_um"] is not None:
                got[m] = {k: float(v) for k, v in vals.items() if v is not None}
        if "sweep" in got and len(got) > 1:
            return got, prefix
    return {}, ""


def choose(card: Any | None, has_background: bool, why_no_model: str = "") -> tuple[str, str]:
    """(method, one-line reason). No model card: sweep. Otherwise the most accurate measured method, or a faster one
    whose MAE is within MAE_SLACK of it and whose worst error stays within MAX_ERROR_UM."""
    if card is None:
        return "sweep", f"Auto → sweep: {why_no_model or 'no autofocus model for these optics'}."
    got, prefix = measured(card, has_background)
    if not got:
        return "sweep", f"Auto → sweep: model {card.id}'s card has no held-out measurements to choose by."
    best = min(got, key=lambda m: got[m]["mae_um"])
    b = got[best]
    cap = max(MAX_ERROR_UM, b.get("max_um", 0.0))
    ok = [m for m, v in got.items() if v["mae_um"] <= MAE_SLACK * b["mae_um"] and v.get("max_um", 0.0) <= cap]
    pick = min(ok, key=lambda m: got[m].get("ms", float("inf")))
    p = got[pick]
    where = {"heldout_both_": "held-out microscopes of two simulators", "nobg_both_":
             "held-out microscopes without a background hologram", "": "the held-out simulated set"}[prefix]
    if not has_background and prefix != "nobg_both_":
        where += " (measured with a background; this stream has none)"
    others = ", ".join(f"{m} {v['mae_um']:.2f} µm" for m, v in got.items() if m != pick)
    speed = f", {p['ms']:.0f} ms/frame" if "ms" in p else ""
    reason = "the most accurate" if pick == best else f"as accurate as {best} (within {MAE_SLACK - 1:.0%}) and faster"
    return pick, (f"Auto → {pick}: {reason} on {where} (MAE {p['mae_um']:.2f} µm, max {p.get('max_um', 0):.1f} µm"
                  f"{speed}; {others}).")
