"""Plug-in manifests (`<plug-in folder>/vitascope.toml`): what a plug-in offers, read without importing it, and
where the installed plug-ins are (entry points of group `vitascope.plugins` plus the app's own plugins/ folder)."""

from __future__ import annotations

import importlib.util
import logging
import sys
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from . import paths
from .problems import PROBLEMS

log = logging.getLogger(__name__)
GROUP = "vitascope.plugins"
MANIFEST_FILE = "vitascope.toml"
MANIFEST_VERSION = 1
_KINDS = ("engine", "widget", "cli")
_TOP = {"manifest_version", "id", "name", "version", "api_version", "description", "tasks", "entries",
        "contributions"}
_CONTRIB = {"engine", "widget", "cli", "commands", "models", "samples", "readers", "train_tasks"}
_scan_cache: dict[tuple[Any, ...], list[Found]] = {}


class ManifestError(ValueError):
    """A manifest that is missing, unreadable or malformed (the message names the file)."""


@dataclass(frozen=True)
class Sample:
    key: str
    title: str
    path: Path  # inside the plug-in's folder


@dataclass(frozen=True)
class Reader:
    entry: str  # "package.module:function", called with a path
    suffixes: tuple[str, ...]
    title: str = ""


@dataclass(frozen=True)
class Manifest:
    """One plug-in's manifest. The file's keys (unknown keys are refused):

    - top level: `manifest_version` (1), `id`, `name`, `version`, `api_version` (the plug-in API it speaks),
      `description`, `tasks` (model tasks it runs), `entries` (further job kinds / data entries job specs may name);
    - `[contributions]`: `engine` (called with the Host), `widget` (called with host and engine), `cli` (called
      with the argparse sub-parsers), `commands` (the top-level commands `cli` adds), `models` (zoo roots, default
      ["models"]), `[[samples]]` (key, title, path), `[[readers]]` (entry, suffixes, title), `[[train_tasks]]`
      (the fields of plugin_api.TrainTask but `plugin`; `recipe` is a path in the folder).

    Paths are relative to the plug-in's folder and may not leave it. Entries are "package.module:attr"; a leading
    "." is relative to the plug-in's package. Here they are absolute and paths resolved."""

    id: str
    name: str
    version: str
    api_version: int
    folder: Path
    package: str
    description: str = ""
    tasks: tuple[str, ...] = ()
    entries: tuple[str, ...] = ()
    engine: str = ""
    widget: str = ""
    cli: str = ""
    commands: tuple[str, ...] = ()
    model_roots: tuple[Path, ...] = ()
    samples: tuple[Sample, ...] = ()
    readers: tuple[Reader, ...] = ()
    train_tasks: tuple[dict[str, Any], ...] = field(default=())  # TrainTask fields; recipe made absolute

    def resource(self, relative: str) -> Path:
        """A file shipped in the plug-in's folder (the path may not exist; callers check)."""
        return self.folder / relative


@dataclass(frozen=True)
class Found:
    """An installed plug-in: its entry-point name and target, and its manifest (None: the plug-in has none and
    must be imported to be known) or the reason it could not be read."""

    name: str
    target: str
    manifest: Manifest | None = None
    error: str = ""


def _absolute(entry: str, package: str) -> str:
    return f"{package}{entry}" if entry.startswith(".") else entry


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{where} must be a list of strings")
    return tuple(value)


def _inside(folder: Path, rel: Any, where: str) -> Path:
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute():
        raise ManifestError(f"{where} must be a relative path inside the plug-in's folder")
    p = (folder / rel).resolve()
    if not p.is_relative_to(folder.resolve()):
        raise ManifestError(f"{where} {rel!r} leaves the plug-in's folder")
    return p


def _train_task(raw: Any, m: dict[str, Any], folder: Path, package: str, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("title"), str):
        raise ManifestError(f"{where} needs at least an id and a title")
    task = dict(raw)
    task["plugin"] = m["id"]
    if task.get("problem", "classification") not in PROBLEMS:
        raise ManifestError(f"{where}.problem {task.get('problem')!r} is not one of {sorted(PROBLEMS)}")
    for key in ("data_entry", "folder_entry", "job"):
        if task.get(key):
            task[key] = _absolute(str(task[key]), package)
    held = task.get("heldout")
    if isinstance(held, dict) and isinstance(held.get("entry"), str):
        task["heldout"] = {**held, "entry": _absolute(held["entry"], package)}
    if task.get("recipe"):
        task["recipe"] = str(_inside(folder, task["recipe"], f"{where}.recipe"))
    return task


def parse_manifest(data: dict[str, Any], folder: Path, package: str) -> Manifest:
    """Check a manifest's table and make its paths and entries absolute. ManifestError names what is wrong."""
    if data.get("manifest_version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise ManifestError(f"manifest_version {data.get('manifest_version')!r}; this Vitascope reads "
                            f"{MANIFEST_VERSION}")
    for key in ("id", "name", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ManifestError(f"{key} must be a non-empty string")
    if not isinstance(data.get("api_version"), int):
        raise ManifestError("api_version must be an integer")
    unknown = set(data) - _TOP
    c = data.get("contributions", {})
    if not isinstance(c, dict):
        raise ManifestError("[contributions] must be a table")
    unknown |= {f"contributions.{k}" for k in set(c) - _CONTRIB}
    if unknown:
        raise ManifestError(f"unknown keys {sorted(unknown)}")
    kinds = {k: _absolute(str(c.get(k, "")), package) if c.get(k) else "" for k in _KINDS}
    samples = tuple(Sample(str(s.get("key", "")), str(s.get("title", "")),
                           _inside(folder, s.get("path"), f"contributions.samples[{i}].path"))
                    for i, s in enumerate(c.get("samples", [])))
    readers = tuple(Reader(_absolute(str(r.get("entry", "")), package),
                           _strs(r.get("suffixes", []), f"contributions.readers[{i}].suffixes"),
                           str(r.get("title", ""))) for i, r in enumerate(c.get("readers", [])))
    roots = tuple(_inside(folder, r, "contributions.models") for r in _strs(c.get("models", ["models"]),
                                                                             "contributions.models"))
    tasks = tuple(_train_task(t, data, folder, package, f"contributions.train_tasks[{i}]")
                  for i, t in enumerate(c.get("train_tasks", [])))
    return Manifest(id=data["id"], name=data["name"], version=data["version"], api_version=data["api_version"],
                    folder=folder, package=package, description=str(data.get("description", "")),
                    tasks=_strs(data.get("tasks", []), "tasks"),
                    entries=tuple(_absolute(e, package) for e in _strs(data.get("entries", []), "entries")),
                    commands=_strs(c.get("commands", []), "contributions.commands"), model_roots=roots,
                    samples=samples, readers=readers, train_tasks=tasks, **kinds)


def read_manifest(folder: Path, package: str) -> Manifest:
    """The manifest in `folder` (the folder of the package `package`)."""
    path = Path(folder) / MANIFEST_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ManifestError(f"{path}: unreadable ({e.strerror or e})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: not valid TOML ({e})") from None
    try:
        return parse_manifest(data, Path(folder), package)
    except (ManifestError, TypeError, AttributeError) as e:
        raise ManifestError(f"{path}: {e}") from None


def package_folder(module: str) -> Path | None:
    """The folder of package `module`, found without running it (its parent packages are imported); None for a
    plain module or one created at run time. ModuleNotFoundError when it is not installed."""
    try:
        spec = importlib.util.find_spec(module)
    except ValueError:  # in sys.modules without a spec
        return None
    if spec is None:
        raise ModuleNotFoundError(f"No module named {module!r}")
    locations = list(spec.submodule_search_locations or [])
    return Path(locations[0]) if locations else None


def find(name: str, target: str) -> Found:
    """The plug-in behind entry point `name` = `target` ("package:attr"), with its manifest when it has one."""
    module = target.partition(":")[0].strip()
    try:
        folder = package_folder(module)
        if folder is None or not (folder / MANIFEST_FILE).is_file():
            return Found(name, target)
        return Found(name, target, read_manifest(folder, module))
    except ManifestError as e:
        return Found(name, target, error=str(e))
    except Exception as e:  # a broken parent package, bad metadata: recorded, never fatal
        return Found(name, target, error=f"{e.__class__.__name__}: {e}")


def builtin_targets() -> dict[str, str]:
    """The app's own plug-ins: every plugins/<id>/ folder of the install with a manifest (also when entry points
    were lost, e.g. in a frozen app or a bare checkout)."""
    base = paths.install_root() / "plugins"
    if not base.is_dir():
        return {}
    return {p.name: f"plugins.{p.name}:plugin" for p in sorted(base.iterdir())
            if p.is_dir() and p.name.isidentifier() and (p / MANIFEST_FILE).is_file()}


def installed(use_entry_points: bool = True, extra: dict[str, str] | None = None) -> list[Found]:
    """Every installed plug-in: entry points first, then the built-in folders not already named, then `extra`
    (name → "module:attr"). Manifests are read; nothing of a plug-in is imported."""
    key = (use_entry_points, tuple(sorted((extra or {}).items())), tuple(sys.path), str(paths.install_root()))
    if key in _scan_cache:
        return _scan_cache[key]
    targets: dict[str, str] = {}
    if use_entry_points:
        try:
            for ep in entry_points(group=GROUP):
                targets.setdefault(ep.name, ep.value)
        except Exception as e:  # corrupt metadata must not stop the app
            log.warning("entry points unreadable: %s", e)
    for name, target in builtin_targets().items():
        if target not in targets.values():
            targets.setdefault(name, target)
    targets.update(extra or {})
    found = [find(name, target) for name, target in targets.items()]
    _scan_cache[key] = found
    return found


def refresh() -> None:
    """Forget the cached scan (after installing a plug-in into a folder already on sys.path)."""
    _scan_cache.clear()


def manifests(use_entry_points: bool = True) -> list[Manifest]:
    return [f.manifest for f in installed(use_entry_points) if f.manifest is not None]


def model_roots() -> list[Path]:
    """The shipped zoo roots: the app's shared models/ folder, then each installed plug-in's own model folders."""
    roots = [paths.builtin_models_dir()]
    for m in manifests():
        roots += [r for r in m.model_roots if r not in roots]
    return roots


def owner_of(module: str) -> Manifest | None:
    """The manifest of the plug-in whose package holds `module` (e.g. "plugins.ecg.engine" → ecg's)."""
    best: Manifest | None = None
    for m in manifests():
        if (module == m.package or module.startswith(m.package + ".")) and \
                (best is None or len(m.package) > len(best.package)):
            best = m
    return best


def by_id(plugin_id: str) -> Manifest | None:
    return next((m for m in manifests() if m.id == plugin_id), None)
