"""The wizard's Evaluate step for a compressed CLIP model, torch-free: the student and its teacher as the job scored
them on the validation captions, read from the student's card."""

from __future__ import annotations

from pathlib import Path

from .card import read_card
from .wizard_clip import HEADLINE, KS
from .wizard_eval import EvalRow


def result_rows(folder: str | Path) -> list[EvalRow]:
    """The student (role "new") and its teacher (role "teacher") as the job measured them on the validation
    captions: text→image R@10 (%) as the metric, every R@k as the per-k values, ONNX image-encoder latency."""
    card = read_card(folder)
    prov = card.provenance
    metrics = {m["name"]: float(m["value"]) for m in card.metrics if isinstance(m.get("value"), (int, float))}
    dataset = str(prov.get("validation", ""))
    n = int(prov.get("validation_captions", 0) or 0)

    def per_k(prefix: str) -> dict[str, float]:
        return {f"{d} R@{k}": metrics[f"{prefix}{d}_R@{k}"] for d in ("t2i", "i2t") for k in KS
                if f"{prefix}{d}_R@{k}" in metrics}

    teacher = dict(prov.get("teacher", {}))
    return [EvalRow("new", card.id, HEADLINE, metrics.get(HEADLINE, float("nan")),
                    float(card.latency.get("image_ms", 0.0)), int(card.total_bytes),
                    int(card.arch.get("params", 0)), n, dataset, per_k("")),
            EvalRow("teacher", str(teacher.get("checkpoint", "teacher")), HEADLINE,
                    metrics.get(f"teacher_{HEADLINE}", float("nan")), float(teacher.get("image_ms", 0.0)),
                    int(teacher.get("onnx_bytes", 0)), int(teacher.get("params", 0)), n, dataset,
                    per_k("teacher_"))]
