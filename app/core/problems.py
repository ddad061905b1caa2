"""What the torch-free side (the wizard's data summary, recipe checks and scoring) knows of each training objective:
the same names as app/train's objectives, described by their metric, targets and what a recipe may choose."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadInput
from .metrics import ACCURACY, MAE, RECALL_AT_1, T2I_RECALL_AT_10, Scorer


@dataclass(frozen=True)
class Problem:
    """`scorer`: its headline metric; `class_targets`: targets are integer labels (classes or identities),
    counted and captioned by name; `output_per_class`: the head has one output per label; `distill` / `losses`:
    the distillation modes and recipe losses it accepts (None: any); `page_job`: the job kind that runs its wizard
    tasks from the inputs of a wizard page of its own, in place of the Data, Start and Recipe pages and the ViT
    training pipeline ("" = those)."""

    scorer: Scorer
    class_targets: bool
    output_per_class: bool = False
    distill: tuple[str, ...] | None = None
    losses: tuple[str, ...] | None = None
    page_job: str = ""


PROBLEMS: dict[str, Problem] = {
    "classification": Problem(ACCURACY, class_targets=True, output_per_class=True, losses=("ce",)),
    # a regressor distils its prediction and features: only plain KD fits
    "regression": Problem(MAE, class_targets=False, distill=("", "kd")),
    "metric": Problem(RECALL_AT_1, class_targets=True),
    # a CLIP model compressed from a user's checkpoint on captioned images (text→image recall)
    "clip": Problem(T2I_RECALL_AT_10, class_targets=False, page_job="app.train.clip_compress_job:run"),
}


def problem(name: str) -> Problem:
    """The description of objective `name`; BadInput for an unknown one."""
    try:
        return PROBLEMS[name]
    except KeyError:
        raise BadInput(f"unknown training problem {name!r} (known: {', '.join(sorted(PROBLEMS))})") from None


def scorer(name: str) -> Scorer:
    """The headline scorer of objective `name` (a task's `problem`); BadInput for an unknown one."""
    if name not in PROBLEMS:
        raise BadInput(f"no metric for a {name!r} model (known: {', '.join(sorted(PROBLEMS))})")
    return PROBLEMS[name].scorer
