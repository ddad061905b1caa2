"""Model cards (`models/<id>/card.toml`): parse, validate, upgrade and write. A card lists its files as
`[[artifacts]]` (role, file, sha256, bytes) and has a `model` artifact or declares the roles it `requires`;
plug-ins keep their own fields in a table named after them."""

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
CLIP_CARD_FILE = "clip_card.toml"  # the text-search plug-in's former card, upgraded when read
CLIP_TASK = "textsearch.clip"
CLIP_ROLES = ("image_encoder", "text_encoder", "tokenizer")
MODEL_FILE = "model.onnx"
GOLDEN_FILE = "golden.npz"
RECIPE_FILE = "recipe.toml"
MODEL_ROLE = "model"
MAX_CARD_BYTES = 1 << 20
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_DTYPES = {"float32", "float16", "int64", "int32", "uint8", "int8", "bool"}
# tables of an old card that named a file beside the model ({file, sha256, ...}) and the role each file takes
_OLD_FILE_TABLES = {"explain": "rollout", "ood": "ood"}
_OPTIONAL_ROLES = {"rollout"}  # a model is still usable without these (e.g. no heat maps); still verified


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (ints, or strings for free dims) and dtype."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class Artifact:
    """One file of a model folder: its role (model, rollout, ood, image_encoder, tokenizer...), name, sha256 and
    size; `bytes` is None only for an upgraded old card whose file was not beside it. An optional artifact that
    fails its check is left out when the model is opened; a required one refuses the model."""

    role: str
    file: str
    sha256: str
    bytes: int | None
    optional: bool = False
    meta: dict[str, Any] = field(default_factory=dict)  # role-specific numbers (the model's params and opset)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "file": self.file, "sha256": self.sha256}
        if self.bytes is not None:
            d["bytes"] = self.bytes
        if self.optional:
            d["optional"] = True
        d.update(self.meta)
        return d


@dataclass
class ModelCard:
    """The parsed card. `sha256`, `bytes`, `params`, `opset` and `model_file` describe the `model` artifact
    (empty / 0 on a card without one, such as a CLIP folder's); `sidecars` are the other artifacts and `requires`
    the roles the card declares its task needs. Tables the core does not type (a plug-in's own table such as
    [holography], [calibration], a newer writer's additions) are kept in `extra` so nothing is lost."""

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
    metrics: list[dict[str, Any]] = field(default_factory=list)
    latency: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    sidecars: list[Artifact] = field(default_factory=list)
    model_file: str = MODEL_FILE
    requires: list[str] = field(default_factory=list)

    @property
    def has_model(self) -> bool:
        """True when the card has a `model` artifact (one ONNX file the app runs with [[inputs]]/[[outputs]])."""
        return bool(self.model_file)

    @property
    def artifacts(self) -> list[Artifact]:
        """Every file the card vouches for, the model (if any) first."""
        if not self.has_model:
            return list(self.sidecars)
        meta = {k: v for k, v in (("params", self.params), ("opset", self.opset)) if v}
        return [Artifact(MODEL_ROLE, self.model_file, self.sha256, self.bytes, meta=meta), *self.sidecars]

    @property
    def total_bytes(self) -> int:
        """The size of every artifact together."""
        return sum(a.bytes or 0 for a in self.artifacts)

    def artifact(self, role: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.role == role), None)

    def section(self, name: str) -> dict[str, Any]:
        """A plug-in's own table (e.g. "holography"), {} when the card has none."""
        val = self.extra.get(name)
        return dict(val) if isinstance(val, dict) else {}

    @property
    def optics(self) -> dict[str, Any]:
        """Read-only alias kept for callers of the old field: the [holography] table's optics."""
        optics = self.section("holography").get("optics")
        return dict(optics) if isinstance(optics, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "task": self.task,
            "version": self.version,
            "license": self.license,
            "description": self.description,
        }
        if self.requires:
            d["requires"] = list(self.requires)
        d["artifacts"] = [a.to_dict() for a in self.artifacts]
        if self.inputs or self.outputs:
            d["inputs"] = [t.to_dict() for t in self.inputs]
            d["outputs"] = [t.to_dict() for t in self.outputs]
        for key in ("arch", "preprocess", "latency", "provenance"):
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


# the typed parts of a card; other top-level tables are kept in ModelCard.extra (plug-in tables, newer writers)
_TOP_FIELDS = {"id": "str", "task": "str", "version": "str", "license": "str", "description": "str",
               "artifacts": "list", "requires": "list[str]", "inputs": "list", "outputs": "list", "arch": "dict",
               "preprocess": "dict",
               "labels": "list[str]", "metrics": "list", "latency": "dict", "provenance": "dict"}
_OLD_MODEL_FIELDS = {"file": "str", "sha256": "str", "bytes": "int", "params": "int", "opset": "int"}
_ARTIFACT_FIELDS = {"role": "str", "file": "str", "sha256": "str", "bytes": "int", "optional": "bool",
                    "params": "int", "opset": "int"}
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


def _plain_name(name: Any) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= 255 and name not in (".", "..", CARD_FILE)
            and not any(c in name for c in "/\\\0") and not name.startswith("."))


# upgrade of old cards ---------------------------------------------------------------------------------------
def is_old_format(data: dict[str, Any]) -> bool:
    """An old card: a [model] table instead of [[artifacts]], file tables such as [ood]/[explain] or a
    top-level [optics] table."""
    return ("model" in data or "optics" in data
            or any(isinstance(data.get(t), dict) and "file" in data[t] and "sha256" in data[t]
                   for t in _OLD_FILE_TABLES))


def upgrade(data: dict[str, Any], folder: str | Path | None = None, where: str = "card") -> dict[str, Any]:
    """An old card dict → the artifacts form (one way; the input is not changed): [model] becomes the `model`
    artifact, a file table ([explain] → `rollout`, [ood] → `ood`) becomes an artifact and keeps its other keys,
    top-level [optics] moves to the [holography] table. A file's size is taken from `folder` when the file
    there has the card's sha256."""
    d = dict(data)
    arts = [dict(a) if isinstance(a, dict) else a for a in d.get("artifacts", [])] \
        if isinstance(d.get("artifacts"), list) else d.get("artifacts")
    if "model" in d:
        model = d.pop("model")
        if not isinstance(model, dict):
            raise ModelError(f"{where}: [model] must be a table (sha256, bytes)")
        check_fields(model, _OLD_MODEL_FIELDS, f"{where}: [model]", ModelError)
        if model.get("file", MODEL_FILE) != MODEL_FILE:
            raise ModelError(f"{where}: [model].file must be {MODEL_FILE!r}")
        if isinstance(arts, list) and any(isinstance(a, dict) and a.get("role") == MODEL_ROLE for a in arts):
            raise ModelError(f"{where}: both a [model] table and a 'model' artifact")
        entry = {"role": MODEL_ROLE, "file": MODEL_FILE, **{k: v for k, v in model.items() if k != "file"}}
        arts = [entry, *(arts or [])]
    for table, role in _OLD_FILE_TABLES.items():
        t = d.get(table)
        if not (isinstance(t, dict) and "file" in t and "sha256" in t):
            continue
        if not isinstance(arts, list):
            arts = []
        arts = [a for a in arts if not (isinstance(a, dict) and a.get("role") == role)]
        entry = {"role": role, "file": t["file"], "sha256": t["sha256"]}
        size = _size_if_matching(folder, t["file"], t["sha256"])
        if size is not None:
            entry["bytes"] = size
        if role in _OPTIONAL_ROLES:
            entry["optional"] = True
        arts.append(entry)
        rest = {k: v for k, v in t.items() if k not in ("file", "sha256")}
        if rest:
            d[table] = rest
        else:
            d.pop(table)
    if "optics" in d:
        optics = d.pop("optics")
        holo = d.get("holography", {})
        if not isinstance(optics, dict) or not isinstance(holo, dict):
            raise ModelError(f"{where}: [optics] and [holography] must be tables")
        if optics:
            d["holography"] = {**holo, "optics": optics}
    if arts is not None:
        d["artifacts"] = arts
    return d


def _size_if_matching(folder: str | Path | None, name: Any, sha: Any) -> int | None:
    if folder is None or not _plain_name(name) or not isinstance(sha, str):
        return None
    p = Path(folder) / name
    try:
        if p.is_file() and not p.is_symlink() and sha256_file(p) == sha:
            return p.stat().st_size
    except OSError:
        return None
    return None


def upgrade_clip_card(data: dict[str, Any], where: str = CLIP_CARD_FILE) -> dict[str, Any]:
    """A former CLIP card (clip_card.toml: task 'clip.embed', a [files] table of image_encoder, text_encoder and
    tokenizer entries) → a card dict in the artifacts form (one way): [files] become artifacts that the card
    `requires`, the task becomes 'textsearch.clip', embed_dim / image_size / context_length and the [tokenizer]
    table move to the [textsearch] table, the [metrics] table becomes [[metrics]] entries."""
    if not isinstance(data, dict) or data.get("task") != "clip.embed":
        raise ModelError(f"{where}: not a CLIP card (task must be 'clip.embed')")
    d = dict(data)
    files = d.pop("files", None)
    if not isinstance(files, dict) or any(not isinstance(files.get(r), dict) for r in CLIP_ROLES):
        raise ModelError(f"{where}: [files] needs {', '.join(CLIP_ROLES)}")
    arts = []
    for role in CLIP_ROLES:
        f = dict(files[role])
        check_fields(f, {"file": "str", "sha256": "str", "bytes": "int"}, f"{where}: [files.{role}]", ModelError)
        arts.append({"role": role, **f})
    own: dict[str, Any] = {}
    for key in ("embed_dim", "image_size", "context_length"):
        if key in d:
            own[key] = d.pop(key)
    tok = d.pop("tokenizer", None)
    if isinstance(tok, dict):
        own["tokenizer"] = {k: v for k, v in tok.items() if k != "file"}
    metrics = d.pop("metrics", {})
    if isinstance(metrics, dict):
        metrics = [{"name": str(k), "value": v} for k, v in metrics.items()]
    out = {**d, "task": CLIP_TASK, "version": d.get("version") or "1",
           "license": d.get("license") or "unspecified", "requires": list(CLIP_ROLES), "artifacts": arts,
           "textsearch": {**(d.get("textsearch") if isinstance(d.get("textsearch"), dict) else {}), **own}}
    if metrics:
        out["metrics"] = metrics
    return out


# parsing ----------------------------------------------------------------------------------------------------
def _artifact(a: Any, where: str) -> Artifact:
    if not isinstance(a, dict):
        raise ModelError(f"{where}: every entry must be a table (role, file, sha256, bytes)")
    check_fields(a, _ARTIFACT_FIELDS, where, ModelError)
    role = a.get("role")
    if not isinstance(role, str) or not _ROLE_RE.match(role):
        raise ModelError(f"{where}: role must be lower-case letters, digits or '_' (got {role!r})")
    w = f"{where} {role!r}"
    if not _plain_name(a.get("file")):
        raise ModelError(f"{w}: file must be a plain file name inside the model folder")
    if not isinstance(a.get("sha256"), str) or not _HEX_RE.match(a["sha256"]):
        raise ModelError(f"{w}: sha256 must be 64 lower-case hex digits")
    nbytes = a.get("bytes")
    if nbytes is not None and nbytes <= 0:
        raise ModelError(f"{w}: bytes must be a positive integer")
    meta = {k: a[k] for k in ("params", "opset") if k in a}
    if any(v < 0 for v in meta.values()):
        raise ModelError(f"{w}: params and opset must not be negative")
    return Artifact(role, a["file"], a["sha256"], nbytes, bool(a.get("optional", False)), meta)


def _artifacts(raw: Any, requires: Any, where: str) -> tuple[Artifact | None, list[Artifact]]:
    """The card rule: unique roles and files; a card either has a `model` artifact (a required .onnx file with its
    size) or declares in `requires` the roles its task needs, each of them a required artifact with its size."""
    top = where
    where = f"{where}: [[artifacts]]"
    if not isinstance(raw, list) or not raw:
        raise ModelError(f"{where}: missing; a card lists its files (role, file, sha256, bytes)")
    arts = [_artifact(a, where) for a in raw]
    for key in ("role", "file"):
        seen = [getattr(a, key) for a in arts]
        dup = sorted({v for v in seen if seen.count(v) > 1})
        if dup:
            raise ModelError(f"{where}: {key} {dup[0]!r} is listed twice")
    model = next((a for a in arts if a.role == MODEL_ROLE), None)
    if requires is not None and (not isinstance(requires, list) or not requires
                                 or not all(isinstance(r, str) for r in requires)
                                 or len(set(requires)) != len(requires)):
        raise ModelError(f"{top}: requires must be a non-empty list of distinct artifact roles")
    if model is None and not requires:
        raise ModelError(f"{where}: no artifact with role 'model' (the ONNX file the app runs) and no 'requires' "
                         "naming the roles the task needs")
    by_role = {a.role: a for a in arts}
    for role in requires or []:
        art = by_role.get(role)
        if art is None:
            raise ModelError(f"{where}: requires {role!r} but lists no artifact with that role")
        if art.optional:
            raise ModelError(f"{where} {role!r}: a required role cannot be optional")
        if art.bytes is None:
            raise ModelError(f"{where} {role!r}: bytes must be a positive integer")
    if model is not None:
        if model.bytes is None:
            raise ModelError(f"{where} 'model': bytes must be a positive integer")
        if not model.file.endswith(".onnx"):
            raise ModelError(f"{where} 'model': file must be an .onnx file")
        if model.optional:
            raise ModelError(f"{where} 'model': the model cannot be optional")
    return model, [a for a in arts if a.role != MODEL_ROLE]


def parse_card(data: dict[str, Any], where: str = "card", folder: str | Path | None = None) -> ModelCard:
    """Validate a card dict (an old one is upgraded first, sizes of upgraded files from `folder`); raise
    ModelError naming the first missing or malformed field."""
    if not isinstance(data, dict):
        raise ModelError(f"{where}: must be a table")
    if is_old_format(data):
        data = upgrade(data, folder, where)
    check_fields(data, _TOP_FIELDS, where, ModelError, unknown_ok=True)
    d = dict(data)
    for key in ("id", "task", "version", "license"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise ModelError(f"{where}: missing or empty '{key}'")
    if not _ID_RE.match(d["id"]):
        raise ModelError(f"{where}: id {d['id']!r} must be lower-case letters, digits, '.', '_' or '-'")
    requires = d.pop("requires", None)
    model, sidecars = _artifacts(d.pop("artifacts", None), requires, where)
    metrics = d.pop("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, dict) and "name" in m and "value" in m
                                                for m in metrics):
        raise ModelError(f"{where}: [[metrics]] entries need a 'name' and a 'value'")
    _check_preprocess(d.get("preprocess", {}), where)
    if model is not None:
        inputs = _tensor_list(d.pop("inputs", None), f"{where}: [[inputs]]")
        outputs = _tensor_list(d.pop("outputs", None), f"{where}: [[outputs]]")
    elif "inputs" in d or "outputs" in d:
        raise ModelError(f"{where}: [[inputs]]/[[outputs]] describe the 'model' artifact, which this card has not")
    else:
        inputs, outputs = [], []
    card = ModelCard(
        id=d.pop("id"), task=d.pop("task"), version=d.pop("version"), license=d.pop("license"),
        description=str(d.pop("description", "")),
        sha256=model.sha256 if model else "", bytes=int(model.bytes or 0) if model else 0,
        params=int(model.meta.get("params", 0)) if model else 0,
        opset=int(model.meta.get("opset", 0)) if model else 0, model_file=model.file if model else "",
        sidecars=sidecars, requires=list(requires or []), inputs=inputs, outputs=outputs,
        arch=dict(d.pop("arch", {})), preprocess=dict(d.pop("preprocess", {})),
        labels=[str(x) for x in d.pop("labels", [])],
        metrics=metrics, latency=dict(d.pop("latency", {})), provenance=dict(d.pop("provenance", {})),
    )
    card.extra = d
    return card


def card_path(folder: str | Path) -> Path | None:
    """The folder's card: card.toml, else a former CLIP card (clip_card.toml); None when it has neither."""
    for name in (CARD_FILE, CLIP_CARD_FILE):
        p = Path(folder) / name
        if p.exists():
            return p
    return None


def read_card(folder: str | Path) -> ModelCard:
    """The folder's card, validated; an old card (or a former clip_card.toml) is upgraded in memory."""
    path = card_path(folder) or Path(folder) / CARD_FILE
    data = read_card_dict(path)
    if path.name == CLIP_CARD_FILE:
        data = upgrade_clip_card(data, str(path))
    return parse_card(data, str(path), folder)


def read_card_dict(path: str | Path) -> dict[str, Any]:
    """The TOML of a card file as a dict (size-limited, UTF-8), not validated."""
    path = Path(path)
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
    return load_toml(text, str(path), ModelError)


def write_card(folder: str | Path, card: ModelCard) -> Path:
    """Write card.toml in the artifacts form. File tables an old-style writer put in `extra` ([ood], [explain]
    with file and sha256) become artifacts, sized from the files in `folder`."""
    import tomli_w

    path = Path(folder) / CARD_FILE
    data = card.to_dict()
    if is_old_format(data):
        data = parse_card(data, str(path), folder).to_dict()
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    tmp.replace(path)
    return path


def with_file(data: dict[str, Any], role: str, path: str | Path) -> dict[str, Any]:
    """A copy of a card dict (artifacts form) whose `role` artifact is the file at `path` now: its name, sha256
    and size; other keys of the entry (params, opset, optional) are kept, a new role is appended."""
    p = Path(path)
    entry = {"role": role, "file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size}
    arts = [dict(a) for a in data.get("artifacts", [])]
    for i, a in enumerate(arts):
        if a.get("role") == role:
            arts[i] = {**a, **entry}
            break
    else:
        arts.append(entry)
    return {**data, "artifacts": arts}


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
