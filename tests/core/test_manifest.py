"""Plug-in manifests: the built-in plug-ins are described by their plugins/<id>/vitascope.toml and found without
being imported; what a manifest names exists inside the plug-in's folder; bad manifests are refused with a reason;
Host.resource resolves inside the plug-in's folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.core import manifest, paths
from app.core.entries import plugin_entries
from app.core.host import HeadlessHost
from app.core.manifest import ManifestError, parse_manifest, read_manifest
from app.core.plugin_api import API_VERSION
from app.core.problems import problem
from app.core.registry import _resolve, discover
from app.core.zoo import Zoo

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ("demo", "ecg", "holography", "retrieval", "textsearch")
SHIPS_MODEL = {"demo": "demo-shapes-vit", "ecg": "ecg-screen-vit", "holography": "holo-autofocus-tvit",
               "retrieval": "retrieval-dcal-vit"}


def test_discovery_imports_no_plugin():
    """In a fresh interpreter: every plug-in, its tasks and train tasks are known, and no plug-in module ran."""
    code = ("import json, sys\nfrom app.core.registry import discover\n"
            "from app.core.wizard_spec import available_tasks\nfrom app.core.zoo import Zoo\n"
            "reg = discover()\nzoo = Zoo()\n"
            "print(json.dumps({'ids': sorted(p.info.id for p in reg.plugins),"
            " 'errors': [e.message for e in reg.errors],"
            " 'tasks': sorted(t.id for t in available_tasks(reg.plugins)), 'models': [c.id for c in zoo.cards()],"
            " 'loaded': sorted(m for m in sys.modules if m.startswith('plugins.'))}))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(BUILTIN) <= set(out["ids"]) and out["errors"] == []
    assert {"demo.shapes", "ecg.screen", "holo.autofocus"} <= set(out["tasks"])
    assert set(SHIPS_MODEL.values()) <= set(out["models"])
    assert out["loaded"] == []


@pytest.mark.parametrize("plugin_id", BUILTIN)
def test_builtin_manifest_names_what_is_in_its_folder(plugin_id):
    folder = ROOT / "plugins" / plugin_id
    m = read_manifest(folder, f"plugins.{plugin_id}")
    assert m.id == plugin_id and m.api_version == API_VERSION and m.folder == folder
    for entry in (m.engine, m.widget, m.cli, *m.entries, *(r.entry for r in m.readers)):
        assert callable(_resolve(entry)), entry
    for task in m.train_tasks:
        assert task["plugin"] == plugin_id
        if problem(task.get("problem", "classification")).page_job:
            continue  # its inputs come from a wizard page of its own: no data entry, no recipe
        assert callable(_resolve(task["data_entry"]))
        recipe = Path(task["recipe"])
        assert recipe.is_file() and recipe.is_relative_to(folder)
    for s in m.samples:
        assert s.path.is_dir() and any(s.path.iterdir()) and s.path.is_relative_to(folder)
    if plugin_id in SHIPS_MODEL:
        assert (folder / "models" / SHIPS_MODEL[plugin_id] / "card.toml").is_file()
        assert folder / "models" in m.model_roots


def test_cli_commands_are_the_ones_the_manifest_lists():
    import argparse

    for plugin in discover(use_entry_points=False).plugins:
        sub = argparse.ArgumentParser().add_subparsers()
        plugin.add_cli(sub)
        assert sorted(sub.choices) == sorted(plugin.manifest.commands), plugin.info.id


def test_train_task_entries_are_allowed_job_entries():
    assert {"plugins.demo.shapes:make_dataset", "plugins.ecg.dataset:make_dataset",
            "plugins.ecg.labelled:folder_dataset", "plugins.holography.dataset:make_dataset",
            "plugins.ecg.labelled:labelled_data", "plugins.retrieval.synthetic:make_split"} <= plugin_entries()


def test_zoo_roots_are_the_shared_folder_then_each_plugins_own():
    roots = Zoo().roots
    assert roots[0] == paths.builtin_models_dir() and roots[-1] == paths.user_models_dir()
    for plugin_id in SHIPS_MODEL:
        assert ROOT / "plugins" / plugin_id / "models" in roots
    by_id = {e.id: e for e in Zoo().entries()}
    for plugin_id, model_id in SHIPS_MODEL.items():
        assert by_id[model_id].folder.parent == ROOT / "plugins" / plugin_id / "models" and by_id[model_id].builtin


# Host.resource --------------------------------------------------------------------------------------------------
def test_resource_resolves_inside_the_hosts_plugin(tmp_path):
    host = HeadlessHost(Zoo(roots=[tmp_path / "none"]), home=tmp_path, plugin_id="ecg")
    assert host.resource("samples") == ROOT / "plugins" / "ecg" / "samples"
    assert (host.resource("samples") / "ecg-demo-4.hea").is_file()
    demo = HeadlessHost(Zoo(roots=[tmp_path / "none"]), home=tmp_path, plugin_id="demo")
    assert sorted(p.name for p in demo.resource("samples").iterdir()) == \
        ["circle.png", "cross.png", "square.png", "triangle.png"]


def test_resource_of_a_shared_host_follows_the_calling_plugin(tmp_path):
    from plugins.ecg.engine import EcgEngine

    engine = EcgEngine(HeadlessHost(Zoo(roots=[tmp_path / "none"]), home=tmp_path))  # the CLI's kind of host
    assert [p.name for p in engine.demo_files()] == ["ecg-demo-1.png", "ecg-demo-2.jpg", "ecg-demo-3.jpg",
                                                      "ecg-demo-4.hea"]
    app_side = HeadlessHost(Zoo(roots=[tmp_path / "none"]), home=tmp_path).resource("help/guide.html")
    assert app_side == paths.resources_dir() / "help" / "guide.html" and app_side.is_file()


# bad manifests ---------------------------------------------------------------------------------------------------
GOOD = {"id": "x", "name": "X", "version": "1", "api_version": API_VERSION,
        "contributions": {"engine": ".engine:E", "widget": ".widget:W"}}


@pytest.mark.parametrize("change, message", [
    ({"manifest_version": 2}, "manifest_version 2"),
    ({"id": ""}, "id must be a non-empty string"),
    ({"api_version": "1"}, "api_version must be an integer"),
    ({"colour": "red"}, "unknown keys ['colour']"),
    ({"contributions": {"models": ["../elsewhere"]}}, "leaves the plug-in's folder"),
    ({"contributions": {"samples": [{"key": "a", "path": "/etc"}]}}, "relative path inside"),
    ({"contributions": {"train_tasks": [{"title": "no id"}]}}, "needs at least an id and a title"),
    ({"contributions": {"readers": [{"entry": ".r:f", "suffixes": ".png"}]}}, "must be a list of strings"),
    ({"tasks": "a.b"}, "tasks must be a list of strings"),
])
def test_bad_manifests_are_refused_with_a_reason(tmp_path, change, message):
    with pytest.raises(ManifestError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        parse_manifest({**GOOD, **change}, tmp_path, "pkg")


def test_relative_entries_and_paths_are_made_absolute(tmp_path):
    m = parse_manifest({**GOOD, "entries": [".jobs:run", "other.mod:fn"],
                        "contributions": {**GOOD["contributions"], "train_tasks": [
                            {"id": "x.t", "title": "T", "data_entry": ".data:make", "recipe": "models/m/r.toml",
                             "heldout": {"entry": ".data:held", "seed": 1}}]}}, tmp_path, "vs_pkg")
    assert m.engine == "vs_pkg.engine:E" and m.entries == ("vs_pkg.jobs:run", "other.mod:fn")
    (task,) = m.train_tasks
    assert task["plugin"] == "x" and task["data_entry"] == "vs_pkg.data:make"
    assert task["heldout"]["entry"] == "vs_pkg.data:held"
    assert task["recipe"] == str((tmp_path / "models" / "m" / "r.toml").resolve())
    assert m.model_roots == ((tmp_path / "models").resolve(),)


def _package(root: Path, name: str, manifest_text: str) -> None:
    pkg = root / name
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('imported')\n", encoding="utf-8")
    (pkg / "vitascope.toml").write_text(manifest_text, encoding="utf-8")


def test_incompatible_or_broken_manifest_plugins_are_recorded_without_importing_them(tmp_path, monkeypatch):
    _package(tmp_path, "vs_future_manifest", f'id = "fut"\nname = "F"\nversion = "1"\napi_version = '
                                             f'{API_VERSION + 1}\n[contributions]\nengine = ".e:E"\n')
    _package(tmp_path, "vs_bad_toml", 'id = "bad\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    manifest.refresh()
    reg = discover(extra={"fut": "vs_future_manifest:plugin", "bad": "vs_bad_toml:plugin"})
    errors = {e.name: e.message for e in reg.errors}
    assert f"speaks plug-in API {API_VERSION + 1}" in errors["fut"]
    assert "not valid TOML" in errors["bad"] and "vitascope.toml" in errors["bad"]
    assert "vs_future_manifest" not in sys.modules and "vs_bad_toml" not in sys.modules
    assert {"demo", "ecg"} <= {p.info.id for p in reg.plugins}


def test_a_training_task_with_an_unknown_problem_is_refused(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "vitascope.toml").write_text(
        'manifest_version = 1\nid = "odd"\nname = "Odd"\nversion = "1"\napi_version = 1\n'
        '[contributions]\n[[contributions.train_tasks]]\nid = "odd.t"\ntitle = "T"\nproblem = "clustering"\n')
    with pytest.raises(ManifestError, match="problem 'clustering' is not one of"):
        read_manifest(folder, "odd")
