"""A CLIP folder is a zoo model: the converter writes card.toml (task textsearch.clip, artifacts image_encoder,
text_encoder and tokenizer, all required); `models list` / `models verify` show it; the plug-in opens it by id
through the zoo; one changed byte of the tokenizer vocabulary is refused in one line (exit 2); a folder with the
former clip_card.toml keeps loading through the one-way upgrade, and installing it writes the new card."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from app.cli import main
from app.core.card import CARD_FILE, CLIP_CARD_FILE, parse_card, read_card, upgrade_clip_card
from app.core.errors import ModelError
from app.core.zoo import Zoo
from plugins.textsearch.model import ClipModel, find_model
from tests.helpers import listed_model

ROLES = ["image_encoder", "text_encoder", "tokenizer"]
LEGACY = Path(__file__).parent / "data" / "legacy_clip_card.toml"


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def make_legacy(src: Path, dest: Path) -> Path:
    """A copy of `src` whose only card is a clip_card.toml in the former writer's layout (the committed legacy card
    with this folder's id, sizes, hashes and dimensions)."""
    shutil.copytree(src, dest)
    new = read_card(dest)
    (dest / CARD_FILE).unlink()
    old = tomllib.loads(LEGACY.read_text())
    t = new.section("textsearch")
    old.update(id=new.id, embed_dim=t["embed_dim"], image_size=t["image_size"],
               context_length=t["context_length"], arch=new.arch, preprocess=new.preprocess)
    old["files"] = {a.role: {"file": a.file, "sha256": a.sha256, "bytes": a.bytes} for a in new.artifacts}
    old["tokenizer"] = {**t["tokenizer"], "file": new.artifact("tokenizer").file}
    (dest / CLIP_CARD_FILE).write_text(tomli_w.dumps(old))
    return dest


def test_converted_folder_has_a_zoo_card(model_dir):
    assert (model_dir / CARD_FILE).is_file() and not (model_dir / CLIP_CARD_FILE).exists()
    card = read_card(model_dir)
    assert card.task == "textsearch.clip" and not card.has_model and card.requires == ROLES
    assert [a.role for a in card.artifacts] == ROLES
    assert all(a.bytes == (model_dir / a.file).stat().st_size and not a.optional for a in card.artifacts)
    assert card.section("textsearch")["embed_dim"] == 32 and card.section("textsearch")["tokenizer"]["eot"] == 49407
    assert {m["name"] for m in card.metrics} == {"parity_image_max_abs", "parity_text_max_abs"}


def test_zoo_lists_verifies_and_opens_clip_models_by_id(model_dir, photos, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    shutil.copytree(model_dir, home / "models" / "tiny-clip")
    monkeypatch.setenv("VITASCOPE_HOME", str(home))
    row = listed_model(main, capsys, "tiny-clip")
    assert row["error"] is None and row["task"] == "textsearch.clip"
    assert [a["role"] for a in row["artifacts"]] == ROLES
    assert main(["models", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("tiny-clip"))
    assert "textsearch.clip" in line and "3 files" in line
    assert main(["models", "verify"]) == 0
    assert "ok      tiny-clip" in capsys.readouterr().out
    assert find_model("tiny-clip") == home / "models" / "tiny-clip"
    db = str(tmp_path / "p.vdb")
    assert main(["clip", "index", str(photos), "--db", db, "--model", "tiny-clip", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "tiny-clip"
    # a model of another task is not a CLIP model
    demo = next(e for e in Zoo().entries() if e.card is not None and e.card.task != "textsearch.clip")
    assert main(["clip", "index", str(photos), "--db", db, "--model", demo.id]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a 'textsearch.clip' model" in err[0]


def test_one_changed_byte_of_the_vocabulary_is_refused(model_dir, photos, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    folder = home / "models" / "tiny-clip"
    shutil.copytree(model_dir, folder)
    vocab = folder / read_card(folder).artifact("tokenizer").file
    _flip(vocab, vocab.stat().st_size // 2)
    monkeypatch.setenv("VITASCOPE_HOME", str(home))
    for argv in (["clip", "index", str(photos), "--db", str(tmp_path / "p.vdb"), "--model", "tiny-clip"],
                 ["clip", "index", str(photos), "--db", str(tmp_path / "p.vdb"), "--model", str(folder)],
                 ["models", "verify"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{vocab.name} (tokenizer): sha256" in err[0], argv
    assert not (tmp_path / "p.vdb").exists()
    with pytest.raises(ModelError, match="tokenizer"):
        Zoo().install(folder, replace=True)


def test_legacy_clip_card_is_upgraded_one_way(model_dir, tmp_path):
    legacy = make_legacy(model_dir, tmp_path / "old" / "tiny-clip")
    raw = tomllib.loads((legacy / CLIP_CARD_FILE).read_text())
    assert raw["task"] == "clip.embed" and set(raw["files"]) == set(ROLES)
    card = read_card(legacy)
    new = read_card(model_dir)
    assert card.task == "textsearch.clip" and card.requires == ROLES
    assert [a.to_dict() for a in card.artifacts] == [a.to_dict() for a in new.artifacts]
    assert card.section("textsearch") == new.section("textsearch")
    assert card.metric("parity_image_max_abs") == pytest.approx(1.341104507446289e-07)  # the old [metrics] table
    assert card.license == "MIT" and card.version == "1" and card.provenance["trained"] == "bench/clip_distill.py"
    with pytest.raises(ModelError, match="not a CLIP card"):  # one way: the new form is not upgraded again
        upgrade_clip_card(card.to_dict())
    # it opens (every artifact checked) and embeds exactly as the new-form folder does
    old_m, new_m = ClipModel(legacy), ClipModel(model_dir)
    texts = ["a red square", "", "two cells"]
    assert np.array_equal(old_m.encode_texts(texts), new_m.encode_texts(texts))
    assert [e.id for e in Zoo(roots=[tmp_path / "old"]).entries()] == ["tiny-clip"]
    # installing writes the new card; the source folder is not changed
    before = {p.name: p.read_bytes() for p in legacy.iterdir()}
    zoo = Zoo(roots=[tmp_path / "user"])
    zoo.install(legacy)
    dest = tmp_path / "user" / "tiny-clip"
    assert (dest / CARD_FILE).is_file() and not (dest / CLIP_CARD_FILE).exists()
    assert read_card(dest).to_dict() == card.to_dict()
    assert {p.name: p.read_bytes() for p in legacy.iterdir()} == before


def test_legacy_card_checks(model_dir, tmp_path):
    legacy = make_legacy(model_dir, tmp_path / "tiny-clip")
    vocab = legacy / read_card(legacy).artifact("tokenizer").file
    _flip(vocab, 100)
    with pytest.raises(ModelError, match=rf"{vocab.name} \(tokenizer\): sha256"):
        ClipModel(legacy)
    _flip(vocab, 100)
    raw = tomllib.loads((legacy / CLIP_CARD_FILE).read_text())
    del raw["files"]["text_encoder"]
    (legacy / CLIP_CARD_FILE).write_text(tomli_w.dumps(raw))
    with pytest.raises(ModelError, match=r"\[files\] needs image_encoder, text_encoder, tokenizer"):
        read_card(legacy)
    raw = tomllib.loads(LEGACY.read_text())
    raw["files"]["tokenizer"]["file"] = "../vocab.txt"
    with pytest.raises(ModelError, match="plain file name"):
        parse_card(upgrade_clip_card(raw))
