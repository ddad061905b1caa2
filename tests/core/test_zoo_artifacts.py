"""Multi-file models: the zoo checks every artifact a card lists (size, then sha256) before anything is loaded,
refuses a model whose required artifact is tampered with (CLI: exit 2, one line), leaves a failing optional one out,
installs every artifact, and Zoo.resolve turns an id or a folder into the model folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from app.core.card import MODEL_ROLE, read_card, with_file
from app.core.errors import BadInput, ModelError
from app.core.zoo import Zoo, open_folder

ROOT = Path(__file__).resolve().parents[2]
SIDE = {"tokenizer": ("vocab.txt", b"hello\nworld\n" * 50), "index": ("index.npy", None),
        "ood": ("ood.npz", None), "rollout": ("rollout.bin", b"\x00\x01" * 300)}


def _add_artifacts(folder: Path, optional: tuple[str, ...] = ("rollout",)) -> Path:
    """Give a model folder side files in several roles, listed in its card."""
    np.save(folder / "index.npy", np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32))
    np.savez(folder / "ood.npz", mean=np.zeros(8, np.float32))
    for _role, (name, content) in SIDE.items():
        if content is not None:
            (folder / name).write_bytes(content)
    data = tomllib.loads((folder / "card.toml").read_text())
    for role, (name, _) in SIDE.items():
        data = with_file(data, role, folder / name)
    for a in data["artifacts"]:
        if a["role"] in optional:
            a["optional"] = True
    (folder / "card.toml").write_text(tomli_w.dumps(data))
    return folder


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_every_artifact_is_listed_and_opened(make_model_folder):
    folder = _add_artifacts(make_model_folder())
    card = read_card(folder)
    assert [a.role for a in card.artifacts] == [MODEL_ROLE, *SIDE]
    for a in card.artifacts:
        assert a.bytes == (folder / a.file).stat().st_size
    handle = open_folder(folder)
    assert handle.left_out == {} and handle.path("tokenizer") == folder / "vocab.txt"
    assert handle.path("nonexistent") is None


@pytest.mark.parametrize("role", ["tokenizer", "index", "ood"])
def test_one_changed_byte_in_a_required_artifact_refuses_the_model(make_model_folder, role):
    folder = _add_artifacts(make_model_folder())
    _flip(folder / SIDE[role][0])
    with pytest.raises(ModelError, match=f"{SIDE[role][0]} \\({role}\\): sha256 .* does not match"):
        open_folder(folder)
    with pytest.raises(ModelError, match=SIDE[role][0]):
        Zoo(roots=[folder.parent]).verify(folder.name)


def test_a_truncated_or_missing_artifact_is_refused(make_model_folder):
    folder = _add_artifacts(make_model_folder())
    (folder / "vocab.txt").write_bytes((folder / "vocab.txt").read_bytes()[:-3])
    with pytest.raises(ModelError, match="vocab.txt \\(tokenizer\\): .* bytes but the card says"):
        open_folder(folder)
    (folder / "vocab.txt").unlink()
    with pytest.raises(ModelError, match="vocab.txt \\(tokenizer\\): missing"):
        open_folder(folder)


def test_a_tampered_optional_artifact_is_left_out_on_open_but_fails_verify(make_model_folder):
    folder = _add_artifacts(make_model_folder())
    _flip(folder / "rollout.bin")
    handle = open_folder(folder)
    assert handle.path("rollout") is None and "sha256" in handle.left_out["rollout"]
    assert handle.path("tokenizer") is not None
    with pytest.raises(ModelError, match="rollout.bin"):
        Zoo(roots=[folder.parent]).verify(folder.name)


def test_an_artifact_outside_the_folder_or_listed_twice_is_refused(make_model_folder):
    folder = _add_artifacts(make_model_folder())
    data = tomllib.loads((folder / "card.toml").read_text())
    for bad, msg in ((dict(data["artifacts"][1], file="../model.onnx"), "plain file name"),
                     (dict(data["artifacts"][1], file=".hidden"), "plain file name"),
                     (dict(data["artifacts"][1], role="Tokenizer"), "role must be"),
                     (dict(data["artifacts"][1], bytes=0), "bytes must be"),
                     (dict(data["artifacts"][1], url="http://x"), "unknown field")):
        (folder / "card.toml").write_text(tomli_w.dumps({**data, "artifacts": [data["artifacts"][0], bad]}))
        with pytest.raises(ModelError, match=msg):
            read_card(folder)
    twice = [*data["artifacts"], data["artifacts"][1]]
    (folder / "card.toml").write_text(tomli_w.dumps({**data, "artifacts": twice}))
    with pytest.raises(ModelError, match="listed twice"):
        read_card(folder)
    (folder / "card.toml").write_text(tomli_w.dumps({**data, "artifacts": data["artifacts"][1:]}))
    with pytest.raises(ModelError, match="no artifact with role 'model'"):
        read_card(folder)


def test_install_copies_and_checks_every_artifact(make_model_folder, tmp_path):
    folder = _add_artifacts(make_model_folder())
    zoo = Zoo(roots=[tmp_path / "user"])
    zoo.install(folder)
    dest = tmp_path / "user" / folder.name
    assert all((dest / a.file).is_file() for a in read_card(dest).artifacts)
    _flip(folder / "vocab.txt")
    with pytest.raises(ModelError, match="vocab.txt"):
        zoo.install(folder, replace=True)
    assert open_folder(dest).path("tokenizer") is not None  # the installed copy is untouched


def test_cli_verify_names_the_tampered_artifact_on_one_line(make_model_folder, tmp_path):
    home = tmp_path / "home"
    folder = _add_artifacts(make_model_folder(root=home / "models"))
    env = {**os.environ, "VITASCOPE_HOME": str(home)}
    ok = subprocess.run([sys.executable, "-m", "app.cli", "models", "verify"], capture_output=True, text=True,
                        cwd=ROOT, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    listed = subprocess.run([sys.executable, "-m", "app.cli", "models", "list", "--json"], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=300)
    row = next(r for r in json.loads(listed.stdout) if r["id"] == folder.name)
    assert [a["role"] for a in row["artifacts"]] == ["model", *SIDE]
    assert all(a["bytes"] == (folder / a["file"]).stat().st_size for a in row["artifacts"])
    _flip(folder / "ood.npz")
    r = subprocess.run([sys.executable, "-m", "app.cli", "models", "verify"], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "ood.npz (ood)" in r.stderr and "Traceback" not in r.stderr


def test_resolve_an_id_a_folder_or_the_first_of_a_task(make_model_folder, tmp_path):
    root = tmp_path / "zoo"
    a = make_model_folder("model-a", task="t.one", root=root)
    b = make_model_folder("model-b", task="t.two", root=root)
    zoo = Zoo(roots=[root])
    assert zoo.resolve("model-b") == b and zoo.resolve(str(a)) == a and zoo.resolve(a) == a
    assert zoo.resolve(None, task="t.two") == b and zoo.resolve(None) == a
    with pytest.raises(ModelError, match="'t.one' model, not a 't.two' model"):
        zoo.resolve("model-a", task="t.two")
    with pytest.raises(ModelError, match="'nope' is not installed .* and is not a folder"):
        zoo.resolve("nope")
    with pytest.raises(ModelError, match="no t.three model is installed"):
        zoo.resolve(None, task="t.three")
    with pytest.raises(BadInput, match="empty"):
        zoo.resolve("  ")
