"""The PyInstaller bundle: build `build.spec` once for this module, then run the frozen executable the way a
user would (CLI, self-test, GUI smoke run) and check what went into the bundle (no torch, size budget).

The build takes ~15-30 s and each run 1-3 s, so CI runs this module. Build time and size are printed to the
terminal (also under `pytest -q`) so CI logs show them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.card import read_card

pytest.importorskip("PyInstaller", reason="pyinstaller is not installed (pip install -e '.[dev]')")

pytestmark = pytest.mark.bundle

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 700 * 1024**2  # budget for the unpacked one-folder bundle
DEMO_MODEL = "demo-shapes-vit"
NO_TORCH_LINE = "install vitascope[train]"


@dataclass
class Bundle:
    root: Path  # dist/vitascope
    exe: Path
    internal: Path  # dist/vitascope/_internal (sys._MEIPASS)
    build_s: float
    bytes: int
    home: Path  # VITASCOPE_HOME for the runs: an empty user zoo

    def run(self, *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VITASCOPE_HOME": str(self.home), **env}
        for var in ("PYTHONPATH", "PYTHONHOME"):
            full_env.pop(var, None)
        return subprocess.run([str(self.exe), *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=full_env, cwd=self.home)


def _tree_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _report(request: pytest.FixtureRequest, line: str) -> None:
    """A line in the terminal output even when pytest captures output (-q, CI)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Bundle:
    tmp = tmp_path_factory.mktemp("bundle")
    dist, work = tmp / "dist", tmp / "build"
    cmd = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--distpath", str(dist), "--workpath", str(work),
           str(ROOT / "build.spec")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    build_s = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    (tmp / "pyinstaller.log").write_text(log, encoding="utf-8")
    if proc.returncode != 0:
        pytest.fail(f"pyinstaller failed (exit {proc.returncode}) after {build_s:.0f} s; last lines:\n"
                    + "\n".join(log.splitlines()[-40:]), pytrace=False)
    root = dist / "vitascope"
    exe = root / ("vitascope.exe" if sys.platform == "win32" else "vitascope")
    assert exe.is_file(), f"no executable at {exe}"
    size = _tree_bytes(root)
    home = tmp / "home"
    home.mkdir()
    _report(request, f"\n[bundle] built in {build_s:.1f} s, {size / 1024**2:.0f} MiB in {root}")
    for line in log.splitlines():
        if line.startswith("build.spec:"):
            _report(request, f"[bundle] {line}")
    return Bundle(root, exe, root / "_internal", build_s, size, home)


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def test_bundle_size_and_contents(bundle: Bundle) -> None:
    assert bundle.bytes <= MAX_BYTES, f"bundle is {bundle.bytes / 1024**2:.0f} MiB > {MAX_BYTES / 1024**2:.0f}"
    internal = bundle.internal
    for heavy in ("torch", "torchvision", "sympy", "onnxscript", "onnx", "matplotlib", "tkinter", "PyQt5"):
        assert not (internal / heavy).exists(), f"{heavy} was bundled (check build.spec excludes)"
    assert (internal / "plugins" / "demo" / "vitascope.toml").is_file()  # manifests ship with their plug-ins
    assert (internal / "plugins" / "demo" / "models" / DEMO_MODEL / "card.toml").is_file()
    assert (internal / "plugins" / "demo" / "models" / DEMO_MODEL / "model.onnx").is_file()
    assert not list(internal.glob("plugins/*/models/*/*.pt")), "training checkpoints were bundled"
    assert (internal / "resources").is_dir()
    # the distribution metadata carries the plug-in entry points into the frozen app
    eps = [p for p in internal.glob("vitascope-*.*-info/entry_points.txt")]
    eps += list(internal.glob("vitascope.egg-info/entry_points.txt"))
    assert eps and "[vitascope.plugins]" in eps[0].read_text(encoding="utf-8"), "vitascope metadata missing"


def _commands(help_text: str) -> set[str]:
    m = re.search(r"\{([^}]+)\}", help_text)
    assert m, f"no command list in:\n{help_text}"
    return set(m.group(1).split(","))


def test_same_commands_as_the_source_tree(bundle: Bundle) -> None:
    """Every plug-in (imported by string, so invisible to PyInstaller's analysis) made it into the bundle."""
    proc = bundle.run("--help")
    assert proc.returncode == 0, proc.stderr
    assert "not loaded" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    frozen = _commands(proc.stdout)
    assert {"gui", "models", "selftest", "train", "worker", "demo"} <= frozen, frozen
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "VITASCOPE_HOME": str(bundle.home)}
    source = subprocess.run([sys.executable, "-m", "app", "--help"], capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert source.returncode == 0, source.stderr
    assert frozen == _commands(source.stdout), "the frozen CLI differs from `python -m app --help`"


def test_selftest(bundle: Bundle) -> None:
    proc = bundle.run("selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout, proc.stdout
    rows = [ln.split() for ln in proc.stdout.splitlines()[1:] if ln.strip() and not ln.endswith("passed")]
    # a multi-file model (a CLIP folder: two encoders and a tokenizer) has no golden output; its files are checked
    multi = {f.parent.name for f in ROOT.glob("plugins/*/models/*/card.toml") if not read_card(f.parent).has_model}
    assert rows and all(r[1] == "ok" and (r[2] == "ok" or (r[2] == "-" and r[0] in multi)) for r in rows), proc.stdout
    assert any(r[0] == DEMO_MODEL for r in rows), proc.stdout


def test_models_list_json(bundle: Bundle) -> None:
    proc = bundle.run("models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)  # stdout holds JSON and nothing else
    demo = [r for r in rows if r["id"] == DEMO_MODEL]
    assert demo, f"{DEMO_MODEL} not listed: {[r['id'] for r in rows]}"
    assert demo[0]["error"] is None and demo[0]["builtin"] is True
    assert Path(demo[0]["folder"]).is_relative_to(bundle.internal), demo[0]["folder"]


def test_gui_smoke_screenshot(bundle: Bundle) -> None:
    png = bundle.home / "smoke.png"
    proc = bundle.run("gui", "--smoke", "--screenshot", str(png), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert png.is_file() and png.stat().st_size > 1000, f"no screenshot written; stderr:\n{proc.stderr}"
    import cv2

    img = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert img is not None, "screenshot is not a readable PNG"
    h, w = img.shape[:2]
    assert h >= 200 and w >= 300, img.shape
    colours = len({tuple(px) for px in img[:: max(1, h // 64), :: max(1, w // 64)].reshape(-1, 3).tolist()})
    assert img.std() > 5 and colours > 8, f"screenshot looks blank (std {img.std():.1f}, {colours} colours)"
    assert "Traceback" not in proc.stderr, proc.stderr


def test_bad_input_is_one_line_exit_2(bundle: Bundle) -> None:
    missing = bundle.home / "nonexistent-model-folder"
    proc = bundle.run("models", "install", str(missing))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = _one_line(proc.stderr)
    assert "nonexistent-model-folder" in line, line


def test_training_commands_explain_missing_torch(bundle: Bundle) -> None:
    spec = bundle.home / "job.json"
    spec.write_text(json.dumps({"kind": "train", "params": {}, "out_dir": str(bundle.home / "job")}),
                    encoding="utf-8")
    recipe = next(ROOT.glob("plugins/*/models/*/recipe.toml"), None)
    runs = [("worker", str(spec))]
    if recipe is not None:
        runs.append(("train", str(recipe)))
    for args in runs:
        proc = bundle.run(*args)
        assert proc.returncode == 2, f"`vitascope {' '.join(args)}`: exit {proc.returncode}\n{proc.stderr}"
        line = _one_line(proc.stderr)
        assert "torch" in line and NO_TORCH_LINE in line, line


def test_ecg_screening_in_the_frozen_app(bundle: Bundle) -> None:
    """The ECG plug-in's readers (images, WFDB via wfdb/pandas), model and de-identification (dicom-anonymizer's
    tables, imported by name) work without Python installed."""
    samples = bundle.internal / "plugins" / "ecg" / "samples"
    proc = bundle.run("ecg", "screen", str(samples), "--json", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 4 and all(r["model"] == "ecg-screen-vit" for r in rows), rows
    assert any(r["file"].endswith(".hea") for r in rows), rows
    import pydicom.data

    out = bundle.home / "deid.dcm"
    proc = bundle.run("ecg", "deid", pydicom.data.get_testdata_file("waveform_ecg.dcm"), str(out))
    assert proc.returncode == 0 and out.is_file(), proc.stdout + proc.stderr
