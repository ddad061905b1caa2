"""The CLIP model folder: `clip_card.toml` naming image_encoder.onnx, text_encoder.onnx and the tokenizer vocabulary,
each with its size and sha256; read, check and write it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.card import Artifact, sha256_file
from app.core.errors import ModelError
from app.core.validate import load_toml
from app.core.zoo import check_artifact

CARD = "clip_card.toml"
IMAGE_FILE = "image_encoder.onnx"
TEXT_FILE = "text_encoder.onnx"
ROLES = ("image_encoder", "text_encoder", "tokenizer")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class ClipCard:
    id: str
    files: dict[str, dict[str, Any]]  # role → {"file", "sha256", "bytes"}
    embed_dim: int
    image_size: int
    context_length: int
    description: str = ""
    license: str = ""
    arch: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    tokenizer: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "task": "clip.embed", "description": self.description,
                             "license": self.license, "embed_dim": self.embed_dim, "image_size": self.image_size,
                             "context_length": self.context_length, "files": self.files}
        for key in ("arch", "preprocess", "tokenizer", "metrics", "latency", "provenance"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d


def file_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def write_card(folder: str | Path, card: ClipCard) -> Path:
    import tomli_w

    path = Path(folder) / CARD
    path.write_text(tomli_w.dumps(_plain(card.to_dict())))
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def read_card(folder: str | Path) -> ClipCard:
    """Parse and check the card's fields (not the files: see `verify`)."""
    path = Path(folder) / CARD
    if not path.is_file():
        raise ModelError(f"{folder}: not a CLIP model folder (no {CARD})")
    if path.stat().st_size > 1 << 20:
        raise ModelError(f"{path}: larger than 1 MiB; not a card")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"{path}: cannot read ({e.__class__.__name__})") from None
    where = str(path)
    d = load_toml(text, where, ModelError)
    if d.get("task") != "clip.embed":
        raise ModelError(f"{where}: task must be 'clip.embed'")
    if not isinstance(d.get("id"), str) or not _ID_RE.match(d["id"]):
        raise ModelError(f"{where}: id must be lower-case letters, digits, '.', '_' or '-'")
    files = d.get("files")
    if not isinstance(files, dict) or any(r not in files for r in ROLES):
        raise ModelError(f"{where}: [files] needs {', '.join(ROLES)}")
    for role in ROLES:
        f = files[role]
        if not (isinstance(f, dict) and isinstance(f.get("file"), str) and "/" not in f["file"]
                and "\\" not in f["file"] and f["file"] not in ("", ".", "..")
                and isinstance(f.get("sha256"), str) and _HEX.match(f["sha256"])
                and isinstance(f.get("bytes"), int) and f["bytes"] > 0):
            raise ModelError(f"{where}: [files.{role}] needs a plain file name, sha256 and bytes")
    for key in ("embed_dim", "image_size", "context_length"):
        if not isinstance(d.get(key), int) or isinstance(d[key], bool) or d[key] <= 0:
            raise ModelError(f"{where}: {key} must be a positive integer")
    return ClipCard(id=d["id"], files=files, embed_dim=d["embed_dim"], image_size=d["image_size"],
                    context_length=d["context_length"], description=str(d.get("description", "")),
                    license=str(d.get("license", "")),
                    **{k: d[k] for k in ("arch", "preprocess", "tokenizer", "metrics", "latency", "provenance")
                       if isinstance(d.get(k), dict)})


def verify(folder: str | Path, card: ClipCard) -> None:
    """Each file's size and sha256 against the card, with the zoo's artifact check (a truncated or replaced file is
    refused by name and role)."""
    for role in ROLES:
        f = card.files[role]
        check_artifact(Path(folder), Artifact(role, f["file"], f["sha256"], f["bytes"]))
