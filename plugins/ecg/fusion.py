"""One decision for a waveform from the model's probabilities and the measurement-based second opinion: the
measured criteria decide what they can measure, a disagreement with the model makes the answer uncertain."""

from __future__ import annotations

from .gate import RecordGate
from .types import CLASS_TITLES, CLASSES, SecondOpinion

OTHER = "other"
MI_FAMILY = ("myocardial_infarction", "history_of_mi")
CONFIDENT = 0.8   # a model probability at or above this is a confident answer


def _title(label: str | None) -> str:
    if label is None:
        return "nothing"
    return CLASS_TITLES.get(label, "other (not one of the four classes)" if label == OTHER else label)


def restrict(probs: dict[str, float], allowed: tuple[str, ...]) -> dict[str, float]:
    p = {k: float(v) for k, v in probs.items() if k in allowed}
    s = sum(p.values())
    return {k: v / s for k, v in p.items()} if s > 0 else {k: 1.0 / len(allowed) for k in allowed}


def fuse(vit_probs: dict[str, float], opinion: SecondOpinion | None, gate: RecordGate | None
         ) -> tuple[str | None, bool, list[str], str]:
    """(label, uncertain, reasons, disagreement) for one waveform.

    Rules, in order:
      1. refused by the gate → (None, uncertain, the refusal).
      2. the model's probabilities are restricted to the classes the leads allow (rhythm-only: normal vs abnormal
         heartbeat) and renormalised.
      3. no second opinion, or it could not read the beats → the model's (restricted) label, uncertain.
      4. the opinion says "other" (paced rhythm, wide QRS / block) → "other", uncertain: not one of the four.
      5. otherwise the opinion's label wins — its criteria are measured (STEMI → acute MI, Q waves → history of
         MI, rhythm → abnormal heartbeat, none → normal). When the model's label differs, the answer is uncertain
         and the disagreement is stated in one line — except when both say an infarction and differ only on its
         age: the ST segment, which the criteria measure, decides acute vs old.
      6. a rhythm-only scope always carries the reason that MI cannot be assessed from its leads.
    """
    reasons: list[str] = []
    if gate is not None and gate.refused:
        return None, True, [gate.refuse or "input refused"], ""
    allowed = gate.assessed if gate is not None and gate.assessed else CLASSES
    if gate is not None and gate.scope != "12-lead":
        reasons += [r for r in gate.reasons if "cannot be assessed" in r]
    p = restrict(vit_probs, tuple(allowed))
    vit = max(p, key=p.get) if p else None
    pv = p.get(vit, 0.0) if vit else 0.0
    if opinion is None or opinion.label is None:
        reasons.append("no measurement-based second opinion (beats not found): the model alone decides")
        return vit, True, reasons, ""
    op = opinion.label
    why = opinion.findings[0] if opinion.findings else ""
    if op == OTHER:
        reasons.append(f"not one of the four classes: {why}" if why else "not one of the four classes")
        dis = f"model: {_title(vit)} {pv:.2f}; criteria: {why or 'other'}" if vit else ""
        return OTHER, True, reasons, dis
    if op not in allowed:  # cannot happen with a consistent gate; stay safe
        op = vit
    if vit == op:
        return op, False, reasons, ""
    dis = f"model: {_title(vit)} {pv:.2f}; criteria: {_title(op)}" + (f" ({why})" if why else "")
    if vit in MI_FAMILY and op in MI_FAMILY:
        reasons.append(f"infarction age from the ST segment: {_title(op)}")
        return op, False, reasons, dis
    reasons.append("the model and the measured criteria disagree")
    return op, True, reasons, dis
