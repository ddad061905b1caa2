"""Every plug-in CLI resolves --model through Zoo.resolve: an unknown id, an empty name and a folder holding another
task's model get the same one-line answer (exit 2) from each command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.zoo import Zoo

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def _folder(task: str) -> Path:
    try:
        return Zoo().resolve(None, task)
    except Exception:
        pytest.skip(f"no {task} model ships in this checkout")


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> Path:
    import cv2
    import numpy as np

    p = tmp_path_factory.mktemp("img") / "x.png"
    img = np.full((128, 128, 3), 255, np.uint8)
    cv2.circle(img, (64, 64), 30, (0, 0, 0), -1)
    cv2.imwrite(str(p), img)
    return p


@pytest.mark.parametrize("cmd,task,other", [(("demo", "classify"), "demo.shapes", "ecg.screen"),
                                            (("ecg", "screen"), "ecg.screen", "demo.shapes")])
def test_model_names_are_resolved_alike(image, cmd, task, other):
    wrong = _folder(other)
    for model, msg in (("no-such-model", "'no-such-model' is not installed (see `vitascope models list`) and is "
                                          "not a folder"),
                       ("", "model: empty"),
                       (str(wrong), f"a {other!r} model, not a {task!r} model")):
        r = _cli(*cmd, str(image), "--model", model)
        assert r.returncode == 2, (model, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr and "Traceback" not in r.stderr
