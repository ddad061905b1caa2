"""CLI subcommands: torch-free import, recipe loading, `train` with an export step, `export` from a checkpoint."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from app.core import paths
from app.core.errors import BadInput
from tests.train.conftest import tiny_recipe

REPO = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    from app.train.commands import add_cli

    ap = argparse.ArgumentParser(prog="vitascope")
    add_cli(ap.add_subparsers(dest="cmd", required=True))
    return ap


def test_import_and_parser_need_no_torch():
    code = ("import sys; sys.modules['torch'] = None; import argparse; from app.train.commands import add_cli; "
            "ap = argparse.ArgumentParser(); add_cli(ap.add_subparsers(dest='c')); "
            "a = ap.parse_args(['export', 'x.pt', '--out', 'd']); print(a.func.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "export_cmd"


def test_parse_args():
    ap = parser()
    a = ap.parse_args(["train", "r.toml", "--out", "o", "--resume"])
    assert (a.recipe, a.out, a.resume, a.func.__name__) == ("r.toml", "o", True, "train_cmd")
    assert ap.parse_args(["worker", "s.json"]).func.__name__ == "worker_cmd"


RECIPE = tiny_recipe({"n_train": 64, "n_val": 16}, {
    "steps": 6, "batch_size": 16,
    "export": {"out_dir": ".", "id": "tiny-shapes", "task": "demo.shapes",
               "labels": ["circle", "square", "triangle", "cross"],
               "preprocess": {"size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "crop": "resize"},
               "heldout": {"seed": 7, "params": {"n_train": 0, "n_val": 16, "size": 32}}, "latency_runs": 5}})


def test_load_recipe_resolves_paths(tmp_path):
    from app.train.commands import load_recipe

    folder = tmp_path / "models" / "tiny-shapes"
    folder.mkdir(parents=True)
    (folder / "recipe.toml").write_text(RECIPE)
    spec = load_recipe(folder / "recipe.toml")
    assert spec.name == "tiny-shapes" and Path(spec.out_dir) == paths.jobs_dir() / "tiny-shapes"
    assert spec.params["export"]["out_dir"] == str(folder)
    assert spec.params["export"]["recipe_file"] == str(folder / "recipe.toml")
    assert load_recipe(folder / "recipe.toml", out=str(tmp_path / "o"), resume=True).resume
    (folder / "recipe.toml").write_text('out_dir = "../runs"\n' + RECIPE)
    assert load_recipe(folder / "recipe.toml").out_dir == str(tmp_path / "models" / "runs")
    with pytest.raises(BadInput, match="no such recipe"):
        load_recipe(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("kind = ")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_recipe(tmp_path / "bad.toml")
    (tmp_path / "odd.toml").write_text('kind = "train"\ncolour = 1\n')
    with pytest.raises(BadInput, match="unknown field"):
        load_recipe(tmp_path / "odd.toml")


def test_train_with_export_then_export_from_checkpoint(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from app.core.card import read_card
    from app.core.zoo import golden_check, open_folder

    folder = tmp_path / "tiny-shapes"
    folder.mkdir()
    (folder / "recipe.toml").write_text(RECIPE)
    ap = parser()
    args = ap.parse_args(["train", str(folder / "recipe.toml"), "--out", str(tmp_path / "run")])
    assert args.func(args) == 0
    card = read_card(folder)
    assert card.id == "tiny-shapes" and card.task == "demo.shapes" and card.labels[0] == "circle"
    assert {m["name"] for m in card.metrics} == {"accuracy", "macro_f1"}
    assert all(m["seed"] == 7 and "held-out" in m["dataset"] for m in card.metrics)
    prov = card.provenance
    assert prov["recipe"] == "recipe.toml" and prov["data_seed"] == 1 and prov["training_seconds"] > 0
    assert prov["torch"] and prov["seed"] == 0
    assert golden_check(open_folder(folder)) <= 1e-4

    ckpt = tmp_path / "run" / "ckpt_last.pt"
    args = ap.parse_args(["export", str(ckpt), "--out", str(tmp_path / "again"), "--id", "tiny-again"])
    assert args.func(args) == 0
    again = read_card(tmp_path / "again")
    assert again.id == "tiny-again" and again.metrics == card.metrics
    assert again.provenance["recipe"] == str(folder / "recipe.toml")  # not next to this copy: full path
    assert golden_check(open_folder(tmp_path / "again")) <= 1e-4


def test_bad_inputs_raise_one_line_errors(tmp_path):
    pytest.importorskip("torch")
    from app.core.errors import VitascopeError

    ap = parser()
    args = ap.parse_args(["export", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")])
    with pytest.raises(VitascopeError, match="no such checkpoint"):
        args.func(args)
    (tmp_path / "r.toml").write_text('kind = "train"\n[params]\nmodel = "nope"\nsteps = 1\n'
                                     '[params.data]\nentry = "a:b"\n')
    args = ap.parse_args(["train", str(tmp_path / "r.toml"), "--out", str(tmp_path / "o")])
    with pytest.raises(VitascopeError, match="unknown model config"):
        args.func(args)
