"""A plug-in installed with pip works like a built-in one: a tiny third-party package (one folder: code, manifest,
its own model and sample) is pip-installed into a temporary folder; the registry finds it through its entry point
without importing it, the zoo lists and runs its model, the wizard offers its training task, Host.resource finds
its sample inside its folder and its CLI command runs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app.core import manifest
from app.core.card import sha256_file
from app.core.host import HeadlessHost
from app.core.plugin_api import API_VERSION
from app.core.registry import ManifestPlugin, discover
from app.core.wizard_spec import WizardSpec, available_tasks
from app.core.zoo import Zoo, golden_check

PKG = "vs_tinyplug"
N_IN, N_OUT = 6, 3

MANIFEST = f"""\
manifest_version = 1
id = "tinyplug"
name = "Tiny third-party plug-in"
version = "0.3.0"
api_version = {API_VERSION}
description = "A linear model that ships in its own folder."
tasks = ["tiny.linear"]

[contributions]
engine = ".engine:TinyEngine"
widget = ".engine:make_widget"
cli = ".engine:add_cli"
commands = ["tiny"]
models = ["models"]

[[contributions.samples]]
key = "one"
title = "One input vector"
path = "samples"

[[contributions.train_tasks]]
id = "tiny.linear"
title = "Tiny linear classifier"
problem = "classification"
data_entry = ".engine:make_dataset"
data_params = {{ n = 64 }}
count_param = "n"
val_param = ""
recipe = "models/tiny-linear/recipe.toml"
"""

ENGINE = '''\
"""The tiny plug-in's engine: runs its own model on its own sample."""
import argparse
import json

import numpy as np

from app.core.host import HeadlessHost

TASK = "tiny.linear"


class TinyEngine:
    def __init__(self, host):
        self.host = host

    def sample(self):
        return np.load(self.host.resource("samples/x.npy"))

    def classify(self, x):
        card = self.host.models(TASK)[0]
        return self.host.open_model(card.id).run(x)[0]

    def demo_source(self):
        return None

    def close(self):
        pass


def make_widget(host, engine):
    return {"engine": engine}


def make_dataset(seed=0, n=64):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    return x, y, x[:8], y[:8]


def add_cli(subparsers):
    p = subparsers.add_parser("tiny", help="classify the tiny plug-in's sample")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    engine = TinyEngine(HeadlessHost())
    print(json.dumps(engine.classify(engine.sample()).tolist()))
    return 0
'''

PYPROJECT = f"""\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "vs-tinyplug"
version = "0.3.0"

[project.entry-points."vitascope.plugins"]
tinyplug = "{PKG}:plugin"

[tool.setuptools]
packages = ["{PKG}"]

[tool.setuptools.package-data]
{PKG} = ["vitascope.toml", "models/*/*", "samples/*"]
"""


def _linear_onnx(path: Path) -> np.ndarray:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(3).normal(size=(N_IN, N_OUT)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["logits"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", N_IN])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", N_OUT])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return w


def _write_source(src: Path) -> np.ndarray:
    """The plug-in's source tree: pyproject.toml and one package folder holding everything else."""
    pkg = src / PKG
    folder = pkg / "models" / "tiny-linear"
    (pkg / "samples").mkdir(parents=True)
    folder.mkdir(parents=True)
    (src / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    (pkg / "__init__.py").write_text('"""A third-party Vitascope plug-in."""\nfrom app.core.registry import '
                                     "load_plugin\n\nplugin = load_plugin(__name__)\n", encoding="utf-8")
    (pkg / "engine.py").write_text(ENGINE, encoding="utf-8")
    (pkg / "vitascope.toml").write_text(MANIFEST, encoding="utf-8")
    w = _linear_onnx(folder / "model.onnx")
    x = np.random.default_rng(4).normal(size=(2, N_IN)).astype(np.float32)
    np.save(pkg / "samples" / "x.npy", x)
    np.savez(folder / "golden.npz", input_0=x, output_0=x @ w)
    (folder / "recipe.toml").write_text('[params]\nsteps = 7\nbatch_size = 16\nlr = 0.01\n', encoding="utf-8")
    (folder / "card.toml").write_text(textwrap.dedent(f"""\
        id = "tiny-linear"
        task = "tiny.linear"
        version = "1.0.0"
        license = "MIT"
        description = "A linear layer, shipped by a third-party plug-in."
        labels = ["a", "b", "c"]

        [model]
        file = "model.onnx"
        sha256 = "{sha256_file(folder / 'model.onnx')}"
        bytes = {(folder / 'model.onnx').stat().st_size}

        [[inputs]]
        name = "x"
        shape = ["batch", {N_IN}]

        [[outputs]]
        name = "logits"
        shape = ["batch", {N_OUT}]
        """), encoding="utf-8")
    return x @ w


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """pip-installs the plug-in (no network, no build isolation) into a fresh folder; returns it and the
    logits its model must give on its sample."""
    base = tmp_path_factory.mktemp("thirdparty")
    expected = _write_source(base / "src")
    target = base / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                           "--no-build-isolation", "--target", str(target), str(base / "src")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return target, expected


@pytest.fixture
def on_path(installed, monkeypatch):
    target, expected = installed
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    manifest.refresh()
    yield target, expected
    for name in [m for m in sys.modules if m == PKG or m.startswith(PKG + ".")]:
        del sys.modules[name]
    manifest.refresh()


def test_pip_installed_the_plugin_as_one_folder(installed):
    target, _ = installed
    pkg = target / PKG
    assert (pkg / "vitascope.toml").is_file() and (pkg / "models" / "tiny-linear" / "model.onnx").is_file()
    assert (pkg / "samples" / "x.npy").is_file()
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == [PKG]


def test_registry_knows_it_without_importing_it(on_path):
    reg = discover()
    plugin = reg.get("tinyplug")
    assert PKG not in sys.modules  # the manifest told the registry everything
    assert isinstance(plugin, ManifestPlugin) and plugin.info.version == "0.3.0"
    assert plugin.info.tasks == ("tiny.linear",)
    assert reg.errors == []


def test_zoo_lists_and_runs_its_model(on_path):
    target, expected = on_path
    zoo = Zoo()
    assert target / PKG / "models" in zoo.roots
    (entry,) = [e for e in zoo.entries() if e.id == "tiny-linear"]
    assert entry.folder == target / PKG / "models" / "tiny-linear" and entry.builtin
    assert [c.id for c in zoo.cards("tiny.linear")] == ["tiny-linear"]
    handle = zoo.open("tiny-linear")
    assert golden_check(handle) <= 1e-5
    x = np.load(target / PKG / "samples" / "x.npy")
    np.testing.assert_allclose(handle.run(x)[0], expected, rtol=1e-5, atol=1e-5)


def test_wizard_offers_its_training_task(on_path):
    target, _ = on_path
    tasks = {t.id: t for t in available_tasks(discover().plugins)}
    task = tasks["tiny.linear"]
    assert task.plugin == "tinyplug" and task.data_entry == f"{PKG}.engine:make_dataset"
    assert Path(task.recipe) == target / PKG / "models" / "tiny-linear" / "recipe.toml"
    spec = WizardSpec()
    spec.set_task(task)
    assert spec.recipe.steps == 7 and spec.recipe.batch_size == 16  # its recipe, read from its folder
    assert {"demo.shapes", "ecg.screen", "holo.autofocus"} <= set(tasks)  # the built-ins' are still there


def test_engine_finds_its_sample_and_model_through_the_host(on_path, tmp_path):
    target, expected = on_path
    plugin = discover().get("tinyplug")
    host = HeadlessHost(home=tmp_path, plugin_id="tinyplug")
    assert host.resource("samples/x.npy") == target / PKG / "samples" / "x.npy"
    engine = plugin.create_engine(host)
    np.testing.assert_allclose(engine.classify(engine.sample()), expected, rtol=1e-5, atol=1e-5)
    assert plugin.create_widget(host, engine) == {"engine": engine}
    # a host shared by several plug-ins resolves a plug-in module's request inside that plug-in's folder
    shared = HeadlessHost(home=tmp_path)
    engine2 = plugin.create_engine(shared)
    np.testing.assert_allclose(engine2.sample(), np.load(target / PKG / "samples" / "x.npy"))


def test_its_cli_command_runs(on_path, capsys):
    from app.cli import main

    _, expected = on_path
    assert main(["tiny"]) == 0
    got = np.array(json.loads(capsys.readouterr().out))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_broken_manifest_is_recorded_not_fatal(on_path):
    target, _ = on_path
    path = target / PKG / "vitascope.toml"
    good = path.read_text(encoding="utf-8")
    try:
        path.write_text(good.replace('path = "samples"', 'path = "../../etc"'), encoding="utf-8")
        manifest.refresh()
        reg = discover()
        errors = {e.name: e.message for e in reg.errors}
        assert "leaves the plug-in's folder" in errors["tinyplug"]
        assert "tinyplug" not in {p.info.id for p in reg.plugins} and "demo" in {p.info.id for p in reg.plugins}
    finally:
        path.write_text(good, encoding="utf-8")
        manifest.refresh()
