"""Plug-in discovery: the app's own plug-ins load from their manifests; broken or incompatible plug-ins are recorded,
never fatal."""

from __future__ import annotations

import sys
import types

from app.core.manifest import builtin_targets
from app.core.plugin_api import API_VERSION, PluginInfo
from app.core.registry import discover


def _fake_module(name: str, api: int) -> None:
    mod = types.ModuleType(name)

    class P:
        info = PluginInfo(id=name, name=name, version="0", api_version=api)

        def create_engine(self, host):
            return None

        def create_widget(self, host, engine):
            return None

        def add_cli(self, sub):
            pass

    mod.plugin = P()
    sys.modules[name] = mod


def test_builtins_load_without_entry_points():
    reg = discover(use_entry_points=False)
    assert set(builtin_targets()) >= {"demo", "ecg", "holography", "retrieval", "textsearch"}
    assert {p.info.id for p in reg.plugins} >= set(builtin_targets())
    assert reg.errors == []


def test_entry_points_and_fallback_do_not_duplicate():
    reg = discover()
    ids = [p.info.id for p in reg.plugins]
    assert len(ids) == len(set(ids))


def test_broken_and_incompatible_plugins_are_recorded():
    _fake_module("vs_future_plugin", API_VERSION + 1)
    _fake_module("vs_good_plugin", API_VERSION)
    reg = discover(extra={"missing": "no.such.module:plugin", "future": "vs_future_plugin:plugin",
                          "good": "vs_good_plugin:plugin", "noattr": "vs_good_plugin:nothing"})
    errors = {e.name: e.message for e in reg.errors}
    assert "ModuleNotFoundError" in errors["missing"]
    assert f"speaks plug-in API {API_VERSION + 1}" in errors["future"]
    assert "AttributeError" in errors["noattr"]
    assert "vs_good_plugin" in {p.info.id for p in reg.plugins}
