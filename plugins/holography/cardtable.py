"""The holography plug-in's own table in a model card, `[holography]`: the optics the model was trained for
(`[holography.optics]`: mode, wavelength, pixel size, NA range, z range, sideband...)."""

from __future__ import annotations

from typing import Any

SECTION = "holography"


def model_optics(card: Any) -> dict[str, Any]:
    """The card's `[holography.optics]` table; {} when the card (or object) states none."""
    section = card.section(SECTION) if callable(getattr(card, "section", None)) else {}
    optics = section.get("optics")
    return dict(optics) if isinstance(optics, dict) else {}


def with_optics(extra: dict[str, Any], optics: dict[str, Any]) -> dict[str, Any]:
    """Card tables `extra` with `optics` set in the [holography] table (other keys of the table kept)."""
    table = dict(extra.get(SECTION) or {})
    return {**extra, SECTION: {**table, "optics": dict(optics)}}
