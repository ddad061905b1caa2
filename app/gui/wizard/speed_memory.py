"""The training speed measured on this computer, remembered per task: the Recipe page's measurement and a run's
own speed (both from app.gui.speed.SpeedMeter, after warm-up) become the next estimate's basis."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from ..settings import app_settings

KEY = "wizard/speed/{task}"


@dataclass
class Measured:
    """Seconds per step for a configuration of relative cost `cost` (wizard_spec.step_cost) with `threads`."""

    seconds_per_step: float
    cost: float
    threads: int
    source: str  # "measurement" | "run"
    when: float  # time.time()

    def describe(self) -> str:
        day = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.when))
        what = "a speed measurement" if self.source == "measurement" else "your last training run of this task"
        return f"measured on this computer ({what}, {day})"


def remember(task_id: str, m: Measured) -> None:
    s = app_settings()
    s.setValue(KEY.format(task=task_id), json.dumps(asdict(m)))
    s.sync()


def recall(task_id: str) -> Measured | None:
    raw = app_settings().value(KEY.format(task=task_id), "")
    if not raw:
        return None
    try:
        m = Measured(**json.loads(str(raw)))
    except (ValueError, TypeError):
        return None
    return m if m.seconds_per_step > 0 and m.cost > 0 else None
