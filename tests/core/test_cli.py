"""The `vitascope` CLI: machine-readable output, and bad input → exit 2 with one line on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def vitascope(*args: str, home: Path, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, VITASCOPE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, **kw)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


def test_models_list_json_and_verify(tmp_path):
    r = vitascope("models", "list", "--json", home=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert rows and all(row["error"] is None for row in rows)
    r = vitascope("models", "verify", home=tmp_path)
    assert r.returncode == 0 and "FAILED" not in r.stdout


def test_install_then_list(make_model_folder, tmp_path):
    src = make_model_folder("cli-installed")
    r = vitascope("models", "install", str(src), home=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "models" / "cli-installed" / "model.onnx").is_file()
    ids = [row["id"] for row in json.loads(vitascope("models", "list", "--json", home=tmp_path).stdout)]
    assert "cli-installed" in ids


def test_selftest_passes_and_catches_tampering(make_model_folder, tmp_path):
    r = vitascope("selftest", home=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "models passed" in r.stdout
    src = make_model_folder("tampered")
    assert vitascope("models", "install", str(src), home=tmp_path).returncode == 0
    installed = tmp_path / "models" / "tampered" / "model.onnx"
    data = bytearray(installed.read_bytes())
    data[-5] ^= 0xFF
    installed.write_bytes(bytes(data))
    r = vitascope("selftest", home=tmp_path)
    line = one_line_error(r)
    assert "tampered" in line and "does not match" in line and "tampered" in r.stdout
    r = vitascope("models", "verify", home=tmp_path)
    line = one_line_error(r)
    assert "1 of" in line and "tampered" in line and "FAILED  tampered" in r.stdout
    rows = {row["id"]: row for row in json.loads(vitascope("models", "list", "--json", home=tmp_path).stdout)}
    assert "does not match" in rows["tampered"]["error"] and rows["demo-shapes-vit"]["error"] is None
    assert "tampered                     BROKEN:" in vitascope("models", "list", home=tmp_path).stdout


@pytest.mark.parametrize("args, needle", [
    (["models", "install", "/nonexistent/model"], "not a model folder"),
    (["no-such-command"], "invalid choice"),
    (["worker", "/nonexistent/spec.json"], "no such job spec"),
])
def test_bad_input_exit_2_one_line(tmp_path, args, needle):
    assert needle in one_line_error(vitascope(*args, home=tmp_path))


def test_corrupt_image_exit_2(tmp_path):
    bad = tmp_path / "scan.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    line = one_line_error(vitascope("demo", "classify", str(bad), home=tmp_path))
    assert "scan.png" in line and "corrupt" in line


def test_install_tampered_folder_refused(make_model_folder, tmp_path):
    src = make_model_folder("evil")
    (src / "model.onnx").write_bytes((src / "model.onnx").read_bytes() + b"\x00")
    line = one_line_error(vitascope("models", "install", str(src), home=tmp_path))
    assert "evil" in line or "model.onnx" in line
