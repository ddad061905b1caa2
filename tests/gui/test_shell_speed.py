"""SpeedMeter, the one speed measurement behind the jobs panel's ETA and the wizard's estimate: warm-up steps are
not counted, the rate follows recent steps, and the ETA counts down between progress events."""

from __future__ import annotations

import pytest

from app.gui.speed import SpeedMeter


def test_warm_up_is_left_out_of_the_speed():
    m = SpeedMeter(warmup_steps=3, warmup_s=1.0)
    t = 0.0
    for step in range(1, 4):  # three slow first steps: 2 s each
        t += 2.0
        m.add(step, t)
    assert m.seconds_per_step() is None and not m.warm
    for step in range(4, 40):  # then 0.25 s per step
        t += 0.25
        m.add(step, t)
    assert m.seconds_per_step() == pytest.approx(0.25)
    assert m.eta_s(100, now=t) == pytest.approx(61 * 0.25)
    assert m.eta_s(100, now=t + 1.0) == pytest.approx(61 * 0.25 - 1.0)  # counts down until the next event


def test_a_machine_that_gets_busier_shows_up_in_the_speed():
    m = SpeedMeter(warmup_steps=1, warmup_s=0.0, window_s=60.0)
    t = 0.0
    for step in range(1, 1001):  # 0.1 s per step for 100 s
        t += 0.1
        m.add(step, t)
    for step in range(1001, 1201):  # then 0.5 s per step for 100 s
        t += 0.5
        m.add(step, t)
    assert m.seconds_per_step() == pytest.approx(0.5, rel=0.02)  # the last minute, not the average since start


def test_a_new_stage_starts_over():
    m = SpeedMeter(warmup_steps=1, warmup_s=0.0)
    for step in range(10):
        m.add(step, step * 1.0)
    m.reset()
    assert m.seconds_per_step() is None
    for step in range(10):
        m.add(step, 100 + step * 0.1)
    assert m.seconds_per_step() == pytest.approx(0.1)
