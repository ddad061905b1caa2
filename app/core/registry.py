"""Plug-in discovery: the installed plug-ins (app.core.manifest) as Plugin objects. A plug-in with a manifest is
known without being imported; its engine, widget and CLI are imported on first use. A plug-in without a manifest
is imported and checked. A broken or incompatible plug-in is recorded, never fatal."""

from __future__ import annotations

import argparse
import importlib
import logging
from dataclasses import dataclass
from typing import Any

from . import manifest as mf
from .manifest import GROUP, Manifest
from .plugin_api import API_VERSION, Host, Plugin, PluginInfo, TrainTask

log = logging.getLogger(__name__)
__all__ = ["GROUP", "LoadError", "ManifestPlugin", "Registry", "discover", "load_plugin"]


@dataclass
class LoadError:
    name: str
    target: str
    message: str


@dataclass
class Registry:
    plugins: list[Plugin]
    errors: list[LoadError]

    def get(self, plugin_id: str) -> Plugin:
        for p in self.plugins:
            if p.info.id == plugin_id:
                return p
        raise KeyError(plugin_id)


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def plugin_info(m: Manifest) -> PluginInfo:
    """The PluginInfo a manifest describes (train tasks included)."""
    return PluginInfo(id=m.id, name=m.name, version=m.version, api_version=m.api_version,
                      description=m.description, tasks=m.tasks, entries=m.entries,
                      train_tasks=tuple(TrainTask(**t) for t in m.train_tasks))


class ManifestPlugin:
    """A plug-in described by its manifest: `info` without importing it; `create_engine`, `create_widget` and
    `add_cli` import the entries the manifest names (or, for those it leaves out, the entry point's object)."""

    def __init__(self, manifest: Manifest, target: str = "") -> None:
        self.manifest = manifest
        self.info = plugin_info(manifest)
        self.target = target

    def _delegate(self, kind: str) -> Any:
        obj = _resolve(self.target) if self.target else None
        if obj is None or isinstance(obj, ManifestPlugin):
            raise TypeError(f"plug-in {self.manifest.id}: the manifest names no {kind}")
        return getattr(obj, {"engine": "create_engine", "widget": "create_widget", "cli": "add_cli"}[kind])

    def create_engine(self, host: Host) -> Any:
        if self.manifest.engine:
            return _resolve(self.manifest.engine)(host)
        return self._delegate("engine")(host)

    def create_widget(self, host: Host, engine: Any) -> Any:
        if self.manifest.widget:
            return _resolve(self.manifest.widget)(host, engine)
        return self._delegate("widget")(host, engine)

    def add_cli(self, subparsers: argparse._SubParsersAction) -> None:
        if self.manifest.cli:
            _resolve(self.manifest.cli)(subparsers)
        elif self.target and not self.manifest.engine:
            self._delegate("cli")(subparsers)


def load_plugin(package: str) -> ManifestPlugin:
    """The `plugin` object of a package that has a manifest: `plugin = load_plugin(__name__)` in its __init__.py."""
    folder = mf.package_folder(package)
    if folder is None:
        raise TypeError(f"{package} is not a package folder; a manifest plug-in is a package")
    m = mf.read_manifest(folder, package)
    if not (m.engine and m.widget):
        raise TypeError(f"{folder / mf.MANIFEST_FILE}: names no engine or widget")
    return ManifestPlugin(m)


def _check(obj: object) -> Plugin:
    info = getattr(obj, "info", None)
    if info is None or not hasattr(info, "api_version") or not hasattr(info, "id"):
        raise TypeError("has no PluginInfo `info`")
    for method in ("create_engine", "create_widget", "add_cli"):
        if not callable(getattr(obj, method, None)):
            raise TypeError(f"lacks {method}()")
    return obj  # type: ignore[return-value]


def _api(version: int) -> None:
    if version != API_VERSION:
        raise TypeError(f"speaks plug-in API {version}, this Vitascope speaks {API_VERSION}; update the plug-in")


def _load(found: mf.Found) -> Plugin:
    if found.error:
        raise TypeError(found.error)
    if found.manifest is not None:
        _api(found.manifest.api_version)
        return ManifestPlugin(found.manifest, found.target)  # type: ignore[return-value]
    plugin = _check(_resolve(found.target))
    _api(plugin.info.api_version)
    return plugin


def discover(extra: dict[str, str] | None = None, use_entry_points: bool = True) -> Registry:
    """Every installed plug-in; `extra` maps name → "module:attr" (tests add broken ones). Without entry points,
    the app's own plugins/ folders are still found by their manifests."""
    plugins: list[Plugin] = []
    errors: list[LoadError] = []
    seen: set[str] = set()
    for found in mf.installed(use_entry_points, extra):
        try:
            plugin = _load(found)
            if plugin.info.id in seen:
                raise TypeError(f"duplicate plug-in id {plugin.info.id!r}")
            seen.add(plugin.info.id)
            plugins.append(plugin)
        except Exception as e:
            msg = str(e) if isinstance(e, TypeError) else f"{e.__class__.__name__}: {e}"
            log.warning("plug-in %s (%s) not loaded: %s", found.name, found.target, msg)
            errors.append(LoadError(found.name, found.target, msg))
    return Registry(plugins, errors)
