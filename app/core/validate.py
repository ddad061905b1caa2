"""Typed checks at the app's boundaries (job specs, recipes, cards, output paths, float inputs), each failing with
one line that names the file and field. Hand-written rather than pydantic: the app does not depend on pydantic
(a compiled extension the frozen bundle would carry for a few dozen fields) and these checks are a page."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadInput, VitascopeError

MAX_DEPTH = 32  # tables/arrays nested deeper than this are refused (ours nest 4 deep at most)
FLOAT32_MAX = float(np.finfo(np.float32).max)


# parsing ---------------------------------------------------------------------------------------------------
def nesting_depth(obj: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply dicts/lists nest in `obj` (0 for a scalar), counted without recursion; stops past `limit`."""
    deepest, stack = 0, [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, Mapping):
            children: Iterable[Any] = o.values()
        elif isinstance(o, (list, tuple)):
            children = o
        else:
            continue
        deepest = max(deepest, d + 1)
        if deepest > limit:
            return deepest
        stack.extend((c, d + 1) for c in children)
    return deepest


def _check_depth(data: Any, where: str, error: type[VitascopeError]) -> Any:
    if nesting_depth(data) > MAX_DEPTH:
        raise error(f"{where}: tables or arrays nested more than {MAX_DEPTH} deep")
    return data


def read_text_file(path: Path, what: str, unreadable: str, error: type[VitascopeError] = BadInput,
                   strerror: bool = False) -> str:
    """The UTF-8 text of the file `path` (a `what`, e.g. "recipe"), with one-line errors: not a regular file, no
    such `what`, or "`unreadable` (why)"; why is the OS error text with `strerror`, else the exception's name."""
    try:
        if path.exists() and not path.is_file():
            raise error(f"{path}: not a regular file")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        why = (strerror and getattr(e, "strerror", None)) or e.__class__.__name__
        raise error(f"{path}: {unreadable} ({why})") from None


def load_json(text: str, where: str, error: type[VitascopeError] = BadInput) -> Any:
    """json.loads with one-line errors, also for absurd nesting (which would otherwise end in RecursionError)."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise error(f"{where}: nested more than {MAX_DEPTH} deep") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{where}: not valid JSON ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise error(f"{where}: unusable value ({str(e).split(';')[0]})") from None
    return _check_depth(data, where, error)


def load_toml(text: str, where: str, error: type[VitascopeError] = BadInput) -> dict[str, Any]:
    """tomllib.loads with one-line errors, also for absurd nesting."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise error(f"{where}: nested more than {MAX_DEPTH} deep") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{where}: not valid TOML ({str(e).splitlines()[0]})") from None
    return _check_depth(data, where, error)


# typed fields ----------------------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


_SCALARS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "an integer"),
    "float": (_is_number, "a finite number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "dict": (lambda v: isinstance(v, Mapping), "a table"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "Any": (lambda v: True, "anything"),
}


def type_check(annotation: str) -> tuple[Callable[[Any], bool], str]:
    """A check and its wording for a dataclass field annotation written as a string: int, float, str, bool,
    dict[...], list[X], X | None."""
    ann = annotation.replace(" ", "")
    if ann.endswith("|None"):
        inner, what = type_check(ann[:-5])
        return (lambda v: v is None or inner(v)), f"{what} or nothing"
    base, _, arg = ann.partition("[")
    if base == "list" and arg:
        item, item_what = type_check(arg[:-1])
        return (lambda v: isinstance(v, list) and all(item(x) for x in v)), f"a list of {item_what.split(' ', 1)[-1]}s"
    if base not in _SCALARS:
        raise ValueError(f"no check for annotation {annotation!r}")
    return _SCALARS[base]


def check_fields(data: Mapping[str, Any], types: Mapping[str, str], where: str,
                 error: type[VitascopeError] = BadInput, unknown_ok: bool = False) -> None:
    """Every key of `data` must be in `types` (unless `unknown_ok`) and hold a value of its annotated type."""
    if not isinstance(data, Mapping):
        raise error(f"{where}: must be a table, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in types)
    if unknown and not unknown_ok:
        raise error(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(types))})")
    for key, ann in types.items():
        if key in data:
            ok, what = type_check(ann)
            if not ok(data[key]):
                raise error(f"{where}: {key} must be {what}, got {_show(data[key])}")


def dataclass_types(cls: type, exclude: Iterable[str] = ()) -> dict[str, str]:
    """Field name → annotation string of a dataclass (modules use `from __future__ import annotations`)."""
    skip = set(exclude)
    return {name: str(f.type) for name, f in cls.__dataclass_fields__.items() if name not in skip}


def _show(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (str, int, float, bool)) or v is None else type(v).__name__
    return text if len(text) <= 40 else text[:37] + "..."


# output paths ----------------------------------------------------------------------------------------------
def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """Refuse (BadInput) an output folder that cannot be created or written, creating nothing: the nearest
    existing ancestor must be a folder in which a folder can be made (probed with a temporary one)."""
    if not str(path).strip():
        raise BadInput(f"{what}: empty path")
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise BadInput(f"{what} {p}: is a file, not a folder")
    _probe(p if p.is_dir() else _existing_ancestor(p, what), p, what)
    return p


def check_output_file(path: str | Path, what: str = "--out") -> Path:
    """Refuse (BadInput) an output file whose folder cannot be created or written, or that names a folder."""
    if not str(path).strip():
        raise BadInput(f"{what}: empty path")
    p = Path(path).expanduser()
    if p.is_dir():
        raise BadInput(f"{what} {p}: is a folder, not a file")
    if p.exists() and not p.is_file():
        raise BadInput(f"{what} {p}: is not a regular file")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise BadInput(f"{what} {p}: {parent} is a file, not a folder")
    _probe(parent if parent.is_dir() else _existing_ancestor(parent, what), p, what)
    return p


def _existing_ancestor(p: Path, what: str) -> Path:
    for a in p.absolute().parents:
        if a.exists():
            if not a.is_dir():
                raise BadInput(f"{what} {p}: {a} is a file, not a folder")
            return a
    return Path("/")


def _probe(folder: Path, target: Path, what: str) -> None:
    try:
        tmp = tempfile.mkdtemp(prefix=".vitascope-probe-", dir=folder)
    except OSError as e:
        raise BadInput(f"{what} {target}: cannot write in {folder} ({e.strerror or e.__class__.__name__})") from None
    shutil.rmtree(tmp, ignore_errors=True)
    if not os.access(folder, os.W_OK):
        raise BadInput(f"{what} {target}: {folder} is not writable")


# numbers ---------------------------------------------------------------------------------------------------
def finite_float32(a: np.ndarray, what: str) -> np.ndarray:
    """`a` as float32, refusing NaN/inf and values beyond float32's range (1e300 would become inf silently)."""
    arr = np.asarray(a)
    if arr.dtype.kind == "c":
        raise BadInput(f"{what}: complex values where real ones are expected")
    if arr.dtype.kind == "f" and arr.size:
        if not np.isfinite(arr).all():
            raise BadInput(f"{what}: holds NaN or infinite values")
        if arr.dtype.itemsize > 4:
            peak = float(np.max(np.abs(arr)))
            if peak > FLOAT32_MAX:
                raise BadInput(f"{what}: values up to {peak:.3g} exceed float32's range ({FLOAT32_MAX:.3g})")
    elif arr.dtype.kind not in "biu":
        raise BadInput(f"{what}: {arr.dtype} values where numbers are expected")
    return arr.astype(np.float32, copy=False)


def check_call_params(fn: Callable[..., Any], params: Mapping[str, Any], where: str,
                      error: type[VitascopeError] = BadInput, reserved: Iterable[str] = ("seed",)) -> None:
    """Keyword arguments for `fn` from a spec: each must be a parameter of `fn` (unless it takes **kwargs) and, where
    its default is a plain int/float/str/bool, of that type."""
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    taken = set(reserved) & set(params)
    if taken:
        raise error(f"{where}: {', '.join(sorted(taken))} cannot be given here")
    ps = sig.parameters
    open_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ps.values())
    for key, value in params.items():
        p = ps.get(key)
        if p is None or p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            if open_kw:
                continue
            raise error(f"{where}: unknown parameter {key!r} (known: {', '.join(k for k in ps if k not in reserved)})")
        default = p.default
        if isinstance(default, bool):
            ok, what = _SCALARS["bool"]
        elif isinstance(default, int):
            ok, what = _SCALARS["int"]
        elif isinstance(default, float):
            ok, what = _SCALARS["float"]
        elif isinstance(default, str):
            ok, what = _SCALARS["str"]
        else:
            continue
        if not ok(value):
            raise error(f"{where}: {key} must be {what}, got {_show(value)}")
