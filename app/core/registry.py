"""Plug-in discovery: entry points of group `vitascope.plugins` plus a static fallback list of the built-ins
(entry points can vanish in frozen apps). A broken or incompatible plug-in is recorded, never fatal."""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from importlib.metadata import entry_points

from .plugin_api import API_VERSION, Plugin

log = logging.getLogger(__name__)
GROUP = "vitascope.plugins"
BUILTIN = {
    "holography": "plugins.holography:plugin",
    "ecg": "plugins.ecg:plugin",
    "demo": "plugins.demo:plugin",
    "textsearch": "plugins.textsearch:plugin",
    "retrieval": "plugins.retrieval:plugin",
}


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


def _resolve(target: str) -> object:
    module, _, attr = target.partition(":")
    obj: object = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _check(name: str, target: str, obj: object) -> Plugin:
    info = getattr(obj, "info", None)
    if info is None or not hasattr(info, "api_version") or not hasattr(info, "id"):
        raise TypeError("has no PluginInfo `info`")
    if info.api_version != API_VERSION:
        raise TypeError(f"speaks plug-in API {info.api_version}, this Vitascope speaks {API_VERSION}; "
                        "update the plug-in")
    for method in ("create_engine", "create_widget", "add_cli"):
        if not callable(getattr(obj, method, None)):
            raise TypeError(f"lacks {method}()")
    return obj  # type: ignore[return-value]


def discover(extra: dict[str, str] | None = None, use_entry_points: bool = True) -> Registry:
    """Load every plug-in; `extra` maps name → "module:attr" (used by tests to add broken ones)."""
    targets: dict[str, str] = {}
    if use_entry_points:
        try:
            for ep in entry_points(group=GROUP):
                targets.setdefault(ep.name, ep.value)
        except Exception as e:  # corrupt metadata must not stop the app
            log.warning("entry points unreadable: %s", e)
    for name, target in BUILTIN.items():
        targets.setdefault(name, target)
    targets.update(extra or {})
    plugins: list[Plugin] = []
    errors: list[LoadError] = []
    seen: set[str] = set()
    for name, target in targets.items():
        try:
            plugin = _check(name, target, _resolve(target))
            if plugin.info.id in seen:
                raise TypeError(f"duplicate plug-in id {plugin.info.id!r}")
            seen.add(plugin.info.id)
            plugins.append(plugin)
        except Exception as e:
            msg = f"{e.__class__.__name__}: {e}" if not isinstance(e, TypeError) else str(e)
            log.warning("plug-in %s (%s) not loaded: %s", name, target, msg)
            errors.append(LoadError(name, target, msg))
    return Registry(plugins, errors)
