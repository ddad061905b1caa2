"""The model zoo refuses tampered, truncated or mismatched models and installs atomically."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import tomli_w

from app.core.card import read_card
from app.core.errors import ModelError
from app.core.zoo import Zoo, golden_check, open_folder


def test_open_and_golden(make_model_folder):
    folder = make_model_folder()
    handle = open_folder(folder)
    assert handle.card.id == "tiny-linear"
    assert golden_check(handle) < 1e-5
    out = handle.run(np.ones((3, 12), np.float32))[0]
    assert out.shape == (3, 4)


def test_flipped_byte_is_refused_with_clear_message(make_model_folder):
    folder = make_model_folder()
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 .* does not match"):
        open_folder(folder)


def test_truncated_file_is_refused_before_hashing(make_model_folder):
    folder = make_model_folder()
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(data[:-10])
    with pytest.raises(ModelError, match="bytes but the card says"):
        open_folder(folder)


def test_sidecar_weights_refused(make_model_folder):
    folder = make_model_folder()
    (folder / "model.onnx.data").write_bytes(b"x")
    with pytest.raises(ModelError, match="sidecar"):
        open_folder(folder)


def test_card_io_mismatch_refused(make_model_folder):
    folder = make_model_folder()
    raw = tomllib.loads((folder / "card.toml").read_text())
    raw["inputs"][0]["name"] = "image"
    (folder / "card.toml").write_text(tomli_w.dumps(raw))
    with pytest.raises(ModelError, match="inputs"):
        open_folder(folder)
    raw["inputs"][0]["name"] = "x"
    raw["inputs"][0]["shape"] = ["batch", 13]
    (folder / "card.toml").write_text(tomli_w.dumps(raw))
    with pytest.raises(ModelError, match="card says"):
        open_folder(folder)


@pytest.mark.parametrize("text, match", [
    ("id = 'x'", "missing or empty 'task'"),
    ("not toml [[[", "not valid TOML"),
])
def test_bad_cards(tmp_path, text, match):
    (tmp_path / "card.toml").write_text(text)
    with pytest.raises(ModelError, match=match):
        read_card(tmp_path)


def test_wrong_input_shape_and_nan_rejected(make_model_folder):
    handle = open_folder(make_model_folder())
    with pytest.raises(ModelError, match="must be"):
        handle.run(np.ones((1, 11), np.float32))
    x = np.ones((1, 12), np.float32)
    x[0, 3] = np.nan
    with pytest.raises(ModelError, match="NaN"):
        handle.run(x)


def test_install_is_atomic_and_visible(make_model_folder, tmp_path):
    src = make_model_folder()
    zoo = Zoo(roots=[tmp_path / "builtin", tmp_path / "user"])
    seen = []
    zoo.on_change(lambda: seen.append(1))
    card = zoo.install(src)
    assert card.id == "tiny-linear" and seen == [1]
    assert [e.id for e in zoo.entries()] == ["tiny-linear"]
    assert not [p for p in (tmp_path / "user").iterdir() if p.name.startswith(".")]
    with pytest.raises(ModelError, match="already installed"):
        zoo.install(src)
    zoo.install(src, replace=True)
    assert zoo.open("tiny-linear").card.id == "tiny-linear"


def test_install_refuses_tampered_source_and_leaves_nothing(make_model_folder, tmp_path):
    src = make_model_folder()
    (src / "model.onnx").write_bytes((src / "model.onnx").read_bytes()[:-1] + b"\x00")
    zoo = Zoo(roots=[tmp_path / "builtin", tmp_path / "user"])
    with pytest.raises(ModelError):
        zoo.install(src)
    assert not (tmp_path / "user").exists() or not any((tmp_path / "user").iterdir())


def test_broken_entry_listed_not_fatal(make_model_folder, tmp_path):
    root = tmp_path / "zoo"
    make_model_folder("good", root=root)
    bad = root / "bad"
    bad.mkdir()
    (bad / "card.toml").write_text("id = ")
    entries = {e.id: e for e in Zoo(roots=[root]).entries()}
    assert entries["good"].card is not None
    assert entries["bad"].card is None and "not valid TOML" in entries["bad"].error


def test_user_model_overrides_builtin_by_id(make_model_folder, tmp_path):
    make_model_folder("same", task="a", root=tmp_path / "builtin")
    make_model_folder("same", task="b", root=tmp_path / "user")
    zoo = Zoo(roots=[tmp_path / "builtin", tmp_path / "user"])
    assert zoo.cards()[0].task == "b"
    assert zoo.cards("a") == []
