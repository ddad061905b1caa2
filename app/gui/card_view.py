"""A model card (or a broken zoo entry) as readable HTML for the model-zoo browser."""

from __future__ import annotations

from html import escape
from typing import Any

from app.core.card import ModelCard
from app.core.zoo import ZooEntry


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_fmt(x)}" for k, x in v.items())
    return str(v)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _rows(pairs: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><td class='k'>{escape(k)}</td><td>{escape(_fmt(v))}</td></tr>"
                    for k, v in pairs if v not in (None, "", [], {}))
    return f"<table cellspacing='0' cellpadding='2'>{cells}</table>" if cells else ""


def _section(title: str, body: str) -> str:
    return f"<h4>{escape(title)}</h4>{body}" if body else ""


def card_html(card: ModelCard, status: str = "") -> str:
    """Task, version, license, I/O, labels, metrics (data set, seed), latency, size, sha256, provenance."""
    parts = [f"<h3>{escape(card.id)}</h3>"]
    if status:
        parts.append(f"<p>{status}</p>")
    if card.description:
        parts.append(f"<p>{escape(card.description)}</p>")
    parts.append(_rows([("Task", card.task), ("Version", card.version), ("License", card.license),
                        ("Size", f"{_size(card.total_bytes)} ({card.total_bytes:,} bytes)"),
                        ("Parameters", f"{card.params:,}" if card.params else ""),
                        ("Opset", card.opset or "")]))
    io = [(f"in · {t.name}", f"{_fmt(list(t.shape))} {t.dtype}") for t in card.inputs]
    io += [(f"out · {t.name}", f"{_fmt(list(t.shape))} {t.dtype}") for t in card.outputs]
    parts.append(_section("Inputs and outputs", _rows(io)))
    parts.append(_section("Preprocessing", _rows(list(card.preprocess.items()))))
    if card.labels:
        parts.append(_section(f"Labels ({len(card.labels)})", f"<p>{escape(', '.join(card.labels))}</p>"))
    parts.append(_section("Optics", _rows(list(card.optics.items()))))
    if card.metrics:
        rows = []
        for m in card.metrics:
            where = ", ".join(f"{k} {_fmt(m[k])}" for k in ("dataset", "data", "split", "seed", "n") if k in m)
            rest = ", ".join(f"{k} {_fmt(v)}" for k, v in m.items()
                             if k not in ("name", "value", "dataset", "data", "split", "seed", "n"))
            rows.append((str(m["name"]), f"{_fmt(m['value'])}" + (f"  ({where})" if where else "")
                         + (f"  {rest}" if rest else "")))
        parts.append(_section("Metrics (held-out data)", _rows(rows)))
    parts.append(_section("Latency", _rows(list(card.latency.items()))))
    parts.append(_section("Provenance", _rows(list(card.provenance.items()))))
    parts.append(_section("Architecture", _rows(list(card.arch.items()))))
    files = "".join(f"<p class='mono'>{escape(a.role)} · {escape(a.file)}<br>sha256 {a.sha256[:32]}<br>"
                    f"{a.sha256[32:]}</p>" for a in card.artifacts)
    parts.append(_section("Files and checksums", files))
    return "".join(parts)


def entry_html(entry: ZooEntry, status: str = "") -> str:
    if entry.card is not None:
        html = card_html(entry.card, status)
        return html + f"<p class='dim'>{escape(str(entry.folder))}</p>"
    return (f"<h3>{escape(entry.id)}</h3><p class='err'>✗ This model cannot be used: "
            f"{escape(entry.error or 'unreadable card')}</p><p class='dim'>{escape(str(entry.folder))}</p>")


STYLE = """
h3 { margin: 2px 0 4px 0; } h4 { margin: 10px 0 2px 0; }
td.k { padding-right: 12px; font-weight: 600; white-space: nowrap; vertical-align: top; }
.mono { font-family: monospace; font-size: small; } .dim { color: gray; font-size: small; }
.err { color: #c0392b; } .ok { color: #1e8449; }
"""
