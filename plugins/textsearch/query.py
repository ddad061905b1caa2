"""Combined queries as rclip writes them: terms joined by '+' and '-', each text or an image file, optionally
weighted 'W:term'; the query vector is Σ w·positive − Σ w·negative over unit embeddings, then re-normalised."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.errors import BadInput

from .preprocess import IMAGE_SUFFIXES, preprocess

_WEIGHT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+))\s*:(.*)$", re.S)


@dataclass(frozen=True)
class Term:
    kind: str  # "text" | "image"
    value: str
    weight: float = 1.0

    def label(self) -> str:
        w = "" if self.weight == 1.0 else f"{self.weight:g}×"
        return f"{w}{Path(self.value).name if self.kind == 'image' else repr(self.value)}"


def parse_term(raw: str, sign: float = 1.0, images_allowed: bool = True) -> Term:
    """'2:red car' → text 'red car' weight 2; 'photo.jpg' (an existing image file) → image; else text."""
    weight = 1.0
    m = _WEIGHT.match(raw)
    if m:
        weight = float(m.group(1))
        raw = m.group(2)
    text = raw.strip()
    if not text:
        raise BadInput(f"query term {raw!r} is empty")
    p = Path(text).expanduser()
    if images_allowed and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
        return Term("image", str(p), sign * weight)
    return Term("text", text, sign * weight)


def parse_query(tokens: Sequence[str]) -> list[Term]:
    """rclip's grammar: `TERM [(+|-) TERM]...`; a leading '-' makes the first term negative."""
    terms: list[Term] = []
    sign = 1.0
    expect_term = True
    for tok in tokens:
        if tok in ("+", "-"):
            if not expect_term or not terms:
                sign = -1.0 if tok == "-" else 1.0
                expect_term = True
                continue
            raise BadInput(f"query: '{tok}' follows another operator")
        if not expect_term:
            raise BadInput(f"query: expected '+' or '-' before {tok!r}")
        terms.append(parse_term(tok, sign))
        sign, expect_term = 1.0, False
    if not terms:
        raise BadInput("query: no terms")
    if expect_term:
        raise BadInput("query: ends with an operator")
    if not any(t.weight > 0 for t in terms):
        raise BadInput("query: needs at least one positive term")
    return terms


def query_vector(model, terms: Sequence[Term]) -> np.ndarray:
    """Unit query vector [E] from the terms' unit embeddings (texts encoded in one batch)."""
    texts = [t for t in terms if t.kind == "text"]
    vecs: dict[int, np.ndarray] = {}
    if texts:
        emb = model.encode_texts([t.value for t in texts])
        for t, e in zip(texts, emb, strict=True):
            vecs[id(t)] = e
    images = [t for t in terms if t.kind == "image"]
    if images:
        emb = model.encode_images(np.concatenate([preprocess(t.value, model.size) for t in images]))
        for t, e in zip(images, emb, strict=True):
            vecs[id(t)] = e
    q = sum(t.weight * vecs[id(t)] for t in terms)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-6:
        raise BadInput("query: the terms cancel out (the combined vector is zero)")
    return (q / n).astype(np.float32)


def split_query(line: str) -> list[str]:
    """One typed line → rclip tokens: terms separated by ' + ' / ' - ' (spaces around the operator, so 't-shirt'
    stays one term); quotes around a term are dropped."""
    parts = re.split(r"(?:^|\s+)([+-])\s+", " " + line.strip() if line.strip()[:1] in "+-" else line.strip())
    out = []
    for p in parts:
        p = p.strip()
        if len(p) >= 2 and p[0] == p[-1] and p[0] in "\"'":
            p = p[1:-1]
        if p:
            out.append(p)
    return out
