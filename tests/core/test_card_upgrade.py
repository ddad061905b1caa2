"""Old cards keep loading: copies of every shipped card as it was before the artifacts form (tests/core/legacy_cards)
are upgraded — [model] and the file tables become artifacts, [optics] moves to [holography] — with every measured
field kept, and the upgraded model folders open and pass their golden check."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from app.core.card import CARD_FILE, is_old_format, parse_card, read_card, upgrade, write_card
from app.core.zoo import golden_check, open_folder

ROOT = Path(__file__).resolve().parents[2]
LEGACY = Path(__file__).resolve().parent / "legacy_cards"
CARDS = sorted(LEGACY.glob("*/*card.toml"))
MAIN = [p for p in CARDS if p.name == CARD_FILE]
# fields an upgrade must carry over unchanged
KEPT = ("id", "task", "version", "license", "description", "labels", "inputs", "outputs", "arch", "preprocess",
        "metrics", "latency", "provenance")


def _shipped(model_id: str) -> Path:
    for folder in [ROOT / "models" / model_id, *ROOT.glob(f"plugins/*/models/{model_id}")]:
        if (folder / "model.onnx").is_file():
            return folder
    pytest.skip(f"{model_id} is not shipped in this checkout")


def _raw(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_every_shipped_card_has_a_legacy_copy():
    assert {p.parent.name for p in MAIN} >= {"demo-shapes-vit", "ecg-screen-vit", "holo-autofocus-tvit"}
    assert all(is_old_format(_raw(p)) for p in CARDS)


@pytest.mark.parametrize("path", CARDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_upgrade_keeps_every_field(path):
    raw = _raw(path)
    card = parse_card(raw, str(path))
    d = card.to_dict()
    for key in KEPT:
        if key in raw:
            assert d[key] == raw[key], key
    model = card.artifact("model")
    assert (model.file, model.sha256, model.bytes) == ("model.onnx", raw["model"]["sha256"], raw["model"]["bytes"])
    assert (card.params, card.opset) == (raw["model"]["params"], raw["model"]["opset"])
    assert "model" not in d and "optics" not in d and not is_old_format(d)
    if "optics" in raw:
        assert d["holography"]["optics"] == raw["optics"] and card.optics == raw["optics"]
    for table, role in (("explain", "rollout"), ("ood", "ood")):
        if table in raw:
            art = card.artifact(role)
            assert (art.file, art.sha256) == (raw[table]["file"], raw[table]["sha256"])
            rest = {k: v for k, v in raw[table].items() if k not in ("file", "sha256")}
            assert card.section(table) == rest
    untyped = set(raw) - set(KEPT) - {"model", "optics", "explain", "ood"}
    for key in untyped:
        assert d[key] == raw[key], key
    assert parse_card(d, str(path)).to_dict() == d  # the upgraded form is a fixed point
    assert upgrade(raw) is not raw and "model" in raw  # the input is not changed


@pytest.mark.parametrize("path", MAIN, ids=lambda p: p.parent.name)
def test_an_old_card_beside_its_files_opens_checks_every_file_and_rewrites(tmp_path, path):
    src = _shipped(path.parent.name)
    folder = tmp_path / src.name
    shutil.copytree(src, folder)
    shutil.copy2(path, folder / CARD_FILE)
    raw = _raw(path)
    handle = open_folder(folder)
    assert golden_check(handle) <= 1e-4 and handle.left_out == {}
    roles = {a.role for a in handle.card.artifacts}
    assert roles == {"model"} | {r for t, r in (("explain", "rollout"), ("ood", "ood")) if t in raw}
    for art in handle.card.artifacts:  # sizes of the side files come from the files that match the card
        assert art.bytes == (folder / art.file).stat().st_size
    write_card(folder, handle.card)
    assert not is_old_format(_raw(folder / CARD_FILE))
    assert read_card(folder).to_dict() == handle.card.to_dict()


def test_an_old_file_table_whose_file_differs_gets_no_size(tmp_path):
    raw = _raw(LEGACY / "ecg-screen-vit" / "v1.1.card.toml")  # its rollout.onnx is not the one shipped today
    (tmp_path / "rollout.onnx").write_bytes(b"another model's heat map")
    card = parse_card(raw, "v1.1", folder=tmp_path)
    assert card.artifact("rollout").bytes is None and card.artifact("rollout").optional
    assert "bytes" not in next(a for a in card.to_dict()["artifacts"] if a["role"] == "rollout")


def test_a_card_with_both_forms_of_the_model_is_refused():
    raw = _raw(LEGACY / "demo-shapes-vit" / CARD_FILE)
    both = {**raw, "artifacts": [{"role": "model", "file": "model.onnx", "sha256": "0" * 64, "bytes": 1}]}
    from app.core.errors import ModelError

    with pytest.raises(ModelError, match="both a \\[model\\] table and a 'model' artifact"):
        parse_card(both, "card")


def test_shipped_cards_are_written_in_the_artifacts_form():
    shipped = sorted([*ROOT.glob("models/*/*card.toml"), *ROOT.glob("plugins/*/models/*/*card.toml")])
    assert len(shipped) >= len(CARDS)
    for path in shipped:
        raw = _raw(path)
        assert not is_old_format(raw), path
        # a model artifact first, or (a CLIP folder) no model and the roles the task requires
        assert raw["artifacts"][0]["role"] == "model" or (
            raw.get("requires") and {a["role"] for a in raw["artifacts"]} >= set(raw["requires"])), path
        if path.name == CARD_FILE:  # the cards the zoo reads vouch for the size of every file
            assert all(isinstance(a.get("bytes"), int) for a in raw["artifacts"]), path


def test_installing_a_folder_with_an_old_card_installs_the_upgraded_card(tmp_path):
    from app.core.zoo import Zoo

    src = tmp_path / "src"
    shutil.copytree(_shipped("ecg-screen-vit"), src)
    shutil.copy2(LEGACY / "ecg-screen-vit" / CARD_FILE, src / CARD_FILE)
    card = Zoo(roots=[tmp_path / "user"]).install(src)
    dest = tmp_path / "user" / card.id
    assert not is_old_format(_raw(dest / CARD_FILE)) and is_old_format(_raw(src / CARD_FILE))
    assert read_card(dest).to_dict() == read_card(src).to_dict()
    assert open_folder(dest).path("ood") == dest / "ood.npz"
