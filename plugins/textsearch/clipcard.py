"""A CLIP model folder's card: a zoo card of task 'textsearch.clip' that requires the image_encoder, text_encoder
and tokenizer artifacts and keeps embed_dim, image_size, context_length and the tokenizer's settings in its
[textsearch] table. Build one for the converter; read the plug-in's table of an opened card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.card import CLIP_ROLES, CLIP_TASK, ModelCard, parse_card, sha256_file
from app.core.card import read_card as _read_card
from app.core.errors import ModelError

TASK = CLIP_TASK
ROLES = CLIP_ROLES
IMAGE_FILE = "image_encoder.onnx"
TEXT_FILE = "text_encoder.onnx"
SECTION = "textsearch"


@dataclass(frozen=True)
class ClipSpec:
    """The plug-in's numbers from the card's [textsearch] table."""

    embed_dim: int
    image_size: int
    context_length: int
    tokenizer: dict[str, Any]


def spec_of(card: ModelCard) -> ClipSpec:
    """The [textsearch] table of a CLIP card, checked; ModelError naming the first bad field."""
    if card.task != TASK:
        raise ModelError(f"{card.id}: a {card.task!r} model, not a {TASK!r} model")
    t = card.section(SECTION)
    for key in ("embed_dim", "image_size", "context_length"):
        v = t.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ModelError(f"{card.id}: [{SECTION}].{key} must be a positive integer")
    tok = t.get("tokenizer", {})
    return ClipSpec(t["embed_dim"], t["image_size"], t["context_length"], dict(tok) if isinstance(tok, dict) else {})


def artifact(role: str, path: Path, **meta: Any) -> dict[str, Any]:
    """A card's [[artifacts]] entry for the file at `path`."""
    return {"role": role, "file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, **meta}


def card_dict(model_id: str, folder: Path, vocab_file: str, *, embed_dim: int, image_size: int,
              context_length: int, tokenizer: dict[str, Any], description: str = "", license: str = "",
              version: str = "1", arch: dict[str, Any] | None = None, preprocess: dict[str, Any] | None = None,
              metrics: dict[str, Any] | None = None, latency: dict[str, Any] | None = None,
              provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CLIP card dict for the files in `folder` (both encoders and the vocabulary), validated by the core's
    card parser before it is returned."""
    d: dict[str, Any] = {
        "id": model_id, "task": TASK, "version": version, "license": license or "unspecified",
        "description": description, "requires": list(ROLES),
        "artifacts": [artifact("image_encoder", folder / IMAGE_FILE), artifact("text_encoder", folder / TEXT_FILE),
                      artifact("tokenizer", folder / vocab_file)],
        SECTION: {"embed_dim": embed_dim, "image_size": image_size, "context_length": context_length,
                  "tokenizer": tokenizer},
    }
    for key, val in (("arch", arch), ("preprocess", preprocess), ("latency", latency),
                     ("provenance", provenance)):
        if val:
            d[key] = _plain(val)
    if metrics:
        d["metrics"] = [{"name": k, "value": _plain(v)} for k, v in metrics.items()]
    d = _plain(d)
    spec_of(parse_card(d, f"{folder}/card.toml", folder))
    return d


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def read_card(folder: str | Path) -> ModelCard:
    """Thin alias kept for widget.py: the folder's card as the zoo reads it (a former clip_card.toml upgraded)."""
    return _read_card(folder)
