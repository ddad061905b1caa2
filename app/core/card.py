"""Model cards (`models/<id>/card.toml`, format: docs/formats.md): parse, validate and write."""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ModelError
from .validate import check_fields, load_toml

CARD_FILE = "card.toml"
MODEL_FILE = "model.onnx"
GOLDEN_FILE = "golden.npz"
RECIPE_FILE = "recipe.toml"
MAX_CARD_BYTES = 1 << 20
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_DTYPES = {"float32", "float16", "int64", "int32", "uint8", "int8", "bool"}


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (ints, or strings for free dims) and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass
class ModelCard:
    """The parsed card. Unknown tables are kept in `extra` so nothing a newer writer added is lost."""

    id: str
    task: str
    version: str
    license: str
    sha256: str
    bytes: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    description: str = ""
    params: int = 0
    opset: int = 0
    arch: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    optics: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "task": self.task,
            "version": self.version,
            "license": self.license,
            "description": self.description,
            "model": {"file": MODEL_FILE, "sha256": self.sha256, "bytes": self.bytes,
                      "params": self.params, "opset": self.opset},
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }
        for key in ("arch", "preprocess", "optics", "latency", "provenance"):
            val = getattr(self, key)
            if val:
                d[key] = val
        if self.labels:
            d["labels"] = list(self.labels)
        if self.metrics:
            d["metrics"] = list(self.metrics)
        d.update(self.extra)
        return d

    def metric(self, name: str) -> float | None:
        for m in self.metrics:
            if m.get("name") == name:
                return float(m["value"])
        return None


def _tensor_list(raw: Any, where: str) -> list[TensorSpec]:
    if not isinstance(raw, list) or not raw:
        raise ModelError(f"{where}: must be a non-empty list of {{name, shape, dtype}} tables")
    out = []
    for t in raw:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("shape"), list):
            raise ModelError(f"{where}: every entry needs a 'name' and a 'shape'")
        check_fields(t, _TENSOR_FIELDS, where, ModelError)
        shape = tuple(t["shape"])
        if not all((isinstance(s, int) and not isinstance(s, bool) and s > 0) or (isinstance(s, str) and s)
                   for s in shape):
            raise ModelError(f"{where}: shape of {t['name']!r} must hold positive ints or dim names")
        dtype = t.get("dtype", "float32")
        if dtype not in _DTYPES:
            raise ModelError(f"{where}: dtype {dtype!r} of {t['name']!r} is not supported")
        out.append(TensorSpec(t["name"], shape, dtype))
    return out


# the typed parts of a card; other top-level tables are kept in ModelCard.extra (a newer writer's additions)
_TOP_FIELDS = {"id": "str", "task": "str", "version": "str", "license": "str", "description": "str",
               "model": "dict", "inputs": "list", "outputs": "list", "arch": "dict", "preprocess": "dict",
               "labels": "list[str]", "optics": "dict", "metrics": "list", "latency": "dict", "provenance": "dict"}
_MODEL_FIELDS = {"file": "str", "sha256": "str", "bytes": "int", "params": "int", "opset": "int"}
_TENSOR_FIELDS = {"name": "str", "shape": "list", "dtype": "str"}


def _check_preprocess(pre: dict[str, Any], where: str) -> None:
    size = pre.get("size")
    if size is not None:
        sizes = size if isinstance(size, list) else [size]
        if not (1 <= len(sizes) <= 2 and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 8192
                                             for v in sizes)):
            raise ModelError(f"{where}: [preprocess].size must be a positive integer or [height, width]")
    for key in ("mean", "std"):
        v = pre.get(key)
        if v is None:
            continue
        vals = v if isinstance(v, list) else [v]
        if not vals or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                               for x in vals):
            raise ModelError(f"{where}: [preprocess].{key} must be a number or a list of numbers")
        if key == "std" and any(x == 0 for x in vals):
            raise ModelError(f"{where}: [preprocess].std must not be 0")


def parse_card(data: dict[str, Any], where: str = "card") -> ModelCard:
    """Validate a card dict; raise ModelError naming the first missing or malformed field."""
    check_fields(data, _TOP_FIELDS, where, ModelError, unknown_ok=True)
    d = dict(data)
    for key in ("id", "task", "version", "license"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise ModelError(f"{where}: missing or empty '{key}'")
    if not _ID_RE.match(d["id"]):
        raise ModelError(f"{where}: id {d['id']!r} must be lower-case letters, digits, '.', '_' or '-'")
    model = d.pop("model", None)
    if not isinstance(model, dict):
        raise ModelError(f"{where}: missing [model] table (sha256, bytes)")
    check_fields(model, _MODEL_FIELDS, f"{where}: [model]", ModelError)
    if any(model.get(k, 0) < 0 for k in ("params", "opset")):
        raise ModelError(f"{where}: [model].params and opset must not be negative")
    sha = model.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ModelError(f"{where}: [model].sha256 must be 64 lower-case hex digits")
    nbytes = model.get("bytes")
    if not isinstance(nbytes, int) or nbytes <= 0:
        raise ModelError(f"{where}: [model].bytes must be a positive integer")
    if model.get("file", MODEL_FILE) != MODEL_FILE:
        raise ModelError(f"{where}: [model].file must be {MODEL_FILE!r}")
    metrics = d.pop("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, dict) and "name" in m and "value" in m
                                                for m in metrics):
        raise ModelError(f"{where}: [[metrics]] entries need a 'name' and a 'value'")
    pre = d.get("preprocess", {})
    _check_preprocess(pre, where)
    card = ModelCard(
        id=d.pop("id"), task=d.pop("task"), version=d.pop("version"), license=d.pop("license"),
        description=str(d.pop("description", "")),
        sha256=sha, bytes=nbytes, params=int(model.get("params", 0)), opset=int(model.get("opset", 0)),
        inputs=_tensor_list(d.pop("inputs", None), f"{where}: [[inputs]]"),
        outputs=_tensor_list(d.pop("outputs", None), f"{where}: [[outputs]]"),
        arch=dict(d.pop("arch", {})), preprocess=dict(d.pop("preprocess", {})),
        labels=[str(x) for x in d.pop("labels", [])], optics=dict(d.pop("optics", {})),
        metrics=metrics, latency=dict(d.pop("latency", {})), provenance=dict(d.pop("provenance", {})),
    )
    card.extra = d
    return card


def read_card(folder: str | Path) -> ModelCard:
    path = Path(folder) / CARD_FILE
    try:
        if path.exists() and not path.is_file():
            raise ModelError(f"{path}: not a regular file")
        if path.stat().st_size > MAX_CARD_BYTES:
            raise ModelError(f"{path}: {path.stat().st_size} bytes; a card is at most {MAX_CARD_BYTES} bytes")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no model card") from None
    except OSError as e:
        raise ModelError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"{path}: not valid TOML ({e})") from None
    return parse_card(load_toml(text, str(path), ModelError), str(path))


def write_card(folder: str | Path, card: ModelCard) -> Path:
    import tomli_w

    path = Path(folder) / CARD_FILE
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(card.to_dict()), encoding="utf-8")
    tmp.replace(path)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
