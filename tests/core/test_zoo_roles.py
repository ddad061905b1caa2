"""Cards without a `model` artifact: a card declares in `requires` the roles its task needs (two encoders and a
tokenizer); the zoo lists, verifies, installs and opens such a model (every artifact checked, each ONNX artifact
loaded on install), refuses a tampered one by file and role, and the card rule still refuses a card that has
neither a model nor `requires`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from app.core.card import parse_card, read_card, sha256_file
from app.core.errors import ModelError
from app.core.zoo import Zoo, open_folder
from tests.core.conftest import build_linear_onnx
from tests.helpers import listed_model

ROLES = ["image_encoder", "text_encoder", "tokenizer"]


def _entry(role: str, path: Path) -> dict:
    return {"role": role, "file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def make_two_tower(root: Path, model_id: str = "two-tower") -> Path:
    folder = root / model_id
    folder.mkdir(parents=True)
    build_linear_onnx(folder / "image_encoder.onnx", 12, 8, seed=1)
    build_linear_onnx(folder / "text_encoder.onnx", 6, 8, seed=2)
    (folder / "vocab.txt").write_text("a\nb\nc\n" * 100)
    card = {"id": model_id, "task": "test.twotower", "version": "1", "license": "MIT", "requires": ROLES,
            "artifacts": [_entry("image_encoder", folder / "image_encoder.onnx"),
                          _entry("text_encoder", folder / "text_encoder.onnx"),
                          _entry("tokenizer", folder / "vocab.txt")],
            "test": {"embed_dim": 8}}
    (folder / "card.toml").write_text(tomli_w.dumps(card))
    return folder


def _card(folder: Path) -> dict:
    return tomllib.loads((folder / "card.toml").read_text())


def test_model_less_card_is_a_zoo_model(tmp_path):
    folder = make_two_tower(tmp_path / "models")
    card = read_card(folder)
    assert not card.has_model and card.requires == ROLES and [a.role for a in card.artifacts] == ROLES
    assert card.total_bytes == sum((folder / a.file).stat().st_size for a in card.artifacts)
    assert card.section("test") == {"embed_dim": 8}
    again = parse_card(card.to_dict())  # written form round-trips
    assert again.to_dict() == card.to_dict() and "inputs" not in card.to_dict()
    zoo = Zoo(roots=[tmp_path / "models"])
    assert [e.id for e in zoo.entries()] == ["two-tower"] and zoo.entries()[0].card is not None
    assert zoo.resolve("two-tower", "test.twotower") == folder
    with pytest.raises(ModelError, match="not a 'demo.shapes' model"):
        zoo.resolve("two-tower", "demo.shapes")
    handle = zoo.open("two-tower", roles=ROLES)
    assert handle.session is None and handle.path("tokenizer") == folder / "vocab.txt"
    sess = handle.session_of("text_encoder")
    assert sess.get_inputs()[0].shape[1] == 6
    with pytest.raises(ModelError, match="no 'model' artifact to run"):
        handle.run()
    with pytest.raises(ModelError, match="no ONNX artifact with role 'tokenizer'"):
        handle.session_of("tokenizer")
    with pytest.raises(ModelError, match="without a 'index' artifact"):
        zoo.open("two-tower", roles=["index"])


@pytest.mark.parametrize("role,file", [("tokenizer", "vocab.txt"), ("image_encoder", "image_encoder.onnx")])
def test_one_changed_byte_of_any_artifact_is_refused(tmp_path, role, file):
    folder = make_two_tower(tmp_path / "models")
    data = bytearray((folder / file).read_bytes())
    data[len(data) // 3] ^= 0x01
    (folder / file).write_bytes(bytes(data))
    zoo = Zoo(roots=[tmp_path / "models"])
    for check in (lambda: zoo.verify("two-tower"), lambda: open_folder(folder, roles=ROLES),
                  lambda: zoo.install(folder)):
        with pytest.raises(ModelError, match=rf"{file} \({role}\): sha256"):
            check()


def test_install_checks_every_onnx_artifact_loads(tmp_path):
    folder = make_two_tower(tmp_path / "src")
    zoo = Zoo(roots=[tmp_path / "user"])
    assert zoo.install(folder).id == "two-tower"
    assert read_card(tmp_path / "user" / "two-tower").requires == ROLES
    bad = make_two_tower(tmp_path / "src2", "bad-tower")
    (bad / "text_encoder.onnx").write_bytes(b"not onnx" * 40)  # listed with its true hash: passes the checksum
    data = _card(bad)
    data["artifacts"][1] = _entry("text_encoder", bad / "text_encoder.onnx")
    (bad / "card.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(ModelError):
        zoo.install(bad)
    assert not (tmp_path / "user" / "bad-tower").exists()


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("requires"), "no artifact with role 'model'.*no 'requires'"),
    (lambda d: d.update(requires=[]), "requires must be a non-empty list"),
    (lambda d: d.update(requires=["tokenizer", "tokenizer"]), "requires must be a non-empty list"),
    (lambda d: d.update(requires=[*ROLES, "index"]), "requires 'index' but lists no artifact"),
    (lambda d: d["artifacts"][2].update(optional=True), "'tokenizer': a required role cannot be optional"),
    (lambda d: d["artifacts"][2].pop("bytes"), "'tokenizer': bytes must be a positive integer"),
    (lambda d: d.update(inputs=[{"name": "x", "shape": [1]}], outputs=[{"name": "y", "shape": [1]}]),
     "describe the 'model' artifact"),
])
def test_card_rule_refuses(tmp_path, change, message):
    folder = make_two_tower(tmp_path / "models")
    data = _card(folder)
    change(data)
    (folder / "card.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(ModelError, match=message):
        read_card(folder)


def test_ordinary_model_may_also_require_roles(make_model_folder):
    folder = make_model_folder()
    data = _card(folder)
    (folder / "card.toml").write_text(tomli_w.dumps({**data, "requires": ["model"]}))
    assert read_card(folder).requires == ["model"] and read_card(folder).has_model
    (folder / "card.toml").write_text(tomli_w.dumps({**data, "requires": ["model", "ood"]}))
    with pytest.raises(ModelError, match="requires 'ood'"):
        read_card(folder)
    del data["inputs"]  # a model's [[inputs]] stay required
    (folder / "card.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(ModelError, match="inputs"):
        read_card(folder)


def test_cli_lists_verifies_and_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    from app.cli import main

    home = tmp_path / "home"
    folder = make_two_tower(home / "models")
    monkeypatch.setenv("VITASCOPE_HOME", str(home))
    row = listed_model(main, capsys, "two-tower")
    assert row["error"] is None and row["task"] == "test.twotower"
    assert [a["role"] for a in row["artifacts"]] == ROLES
    assert main(["models", "verify"]) == 0
    assert "ok      two-tower" in capsys.readouterr().out
    assert main(["selftest"]) == 0  # no golden run for a card without a model; its encoders must load
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("two-tower"))
    assert row.split()[1:3] == ["ok", "-"]
    data = bytearray((folder / "vocab.txt").read_bytes())
    data[5] ^= 0x01
    (folder / "vocab.txt").write_bytes(bytes(data))
    assert main(["models", "verify"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vocab.txt (tokenizer)" in err[0] and "sha256" in err[0]
