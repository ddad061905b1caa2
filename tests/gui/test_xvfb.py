"""The real window under Xvfb with the xcb platform: `python -m app gui --smoke --screenshot PNG`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.xvfb
def test_real_window_under_xvfb(tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt-get install -y xvfb libxcb-icccm4 libxcb-keysyms1)")
    shot = tmp_path / "xvfb.png"
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", VITASCOPE_HOME=str(tmp_path / "home"),
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("DISPLAY", None)
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24",
           sys.executable, "-m", "app", "gui", "--smoke", "--screenshot", str(shot)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    img = cv2.imread(str(shot))
    assert img is not None, f"no screenshot at {shot}\n{proc.stderr[-2000:]}"
    assert img.shape[0] >= 500 and img.shape[1] >= 800
    assert float(img.std()) > 10, "the screenshot is blank"
