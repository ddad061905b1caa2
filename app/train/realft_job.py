"""Fine-tune a shipped classifier on a user's labelled real images (job kind "app.train.realft_job:run"): k-fold
cross-validation for honest metrics, temperature fitted on the out-of-fold logits, then one model trained on every
fold, exported with its pooled features, Mahalanobis OOD statistics and attention rollout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.calibration import crossfit_ece, expected_calibration_error, fit_temperature, softmax
from app.core.card import read_card, sha256_file, write_card
from app.core.entries import resolve_entry
from app.core.errors import JobError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent
from app.core.ood import fit_mahalanobis
from app.core.validate import check_fields

from .explain import export_rollout
from .export import export_onnx
from .finetune import FineTuned, load
from .finetune_cls import WithFeatures, finetune_classifier, logits_and_features
from .loop import EventFn

OOD_FILE = "ood.npz"
PARAMS = {"init": "str", "real": "dict", "replay": "dict", "steps": "int", "batch_size": "int", "lr": "float",
          "folds": "int", "replay_fraction": "float", "threads": "int", "card": "dict", "labels": "list",
          "ood_quantile": "float", "refuse_margin": "float", "cv": "bool", "freeze_stem_stages": "int"}


def _metrics(y: np.ndarray, pred: np.ndarray, k: int) -> dict[str, Any]:
    cm = np.zeros((k, k), np.int64)
    for t, p in zip(y, pred, strict=True):
        cm[t, p] += 1
    tp = np.diag(cm).astype(np.float64)
    f1 = 2 * tp / np.maximum(cm.sum(0) + cm.sum(1), 1)
    return {"accuracy": float(tp.sum() / max(1, cm.sum())), "macro_f1": float(f1.mean()),
            "recall": (tp / np.maximum(cm.sum(1), 1)).round(4).tolist(), "confusion": cm.tolist()}


def _replay(p: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    if not p:
        return None
    fn = resolve_entry(p["entry"], "replay data entry")
    x, y, _, _ = fn(seed=int(p.get("seed", seed)), **dict(p.get("params", {})))
    return np.asarray(x, np.float32), np.asarray(y, np.int64)


def run(job: JobSpec, on_event: EventFn, cancel: CancelToken) -> str:
    """params: init (checkpoint), real {entry, params} → dict(x, y, folds, files), replay? {entry, params, seed}
    (a loop data entry: its training part is replayed), steps, batch_size, lr, folds, replay_fraction, card {...}."""
    p = dict(job.params)
    check_fields(p, PARAMS, "job spec: params", JobError)
    steps, bs, lr = int(p.get("steps", 400)), int(p.get("batch_size", 16)), float(p.get("lr", 5e-4))
    threads = int(p.get("threads", 2))
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    real = resolve_entry(p["real"]["entry"], "real data entry")(seed=job.seed, **dict(p["real"].get("params", {})))
    x, y, folds = np.asarray(real["x"], np.float32), np.asarray(real["y"], np.int64), np.asarray(real["folds"])
    replay = _replay(dict(p.get("replay") or {}), job.seed)
    k = int(folds.max()) + 1
    t_start = time.perf_counter()
    total = steps * ((k if p.get("cv", True) else 0) + 1)
    done = 0

    def step_event(n: int, loss: float) -> None:
        if n % 25 == 0:
            on_event(ProgressEvent("progress", step=done + n, total=total, values={"loss": loss}))

    def tune(idx: np.ndarray, seed: int) -> FineTuned:
        ft = load(p["init"], threads=threads)
        return finetune_classifier(ft, x[idx], y[idx], steps, lr=lr, batch_size=bs, seed=seed, replay=replay,
                                   replay_fraction=float(p.get("replay_fraction", 0.25)), on_step=step_event,
                                   freeze_stem_stages=int(p.get("freeze_stem_stages", 0)), cancel=cancel)

    oof_logits = np.zeros((len(y), 0))
    oof_scores = np.zeros(len(y))
    ratio: list[float] = []
    in_q: list[float] = []
    if p.get("cv", True):
        for f in range(k):
            tr, te = np.nonzero(folds != f)[0], np.nonzero(folds == f)[0]
            ft = tune(tr, job.seed * 100 + f)
            lo, fe = logits_and_features(ft.model, x[te])
            ltr, ftr = logits_and_features(ft.model, x[tr])
            if oof_logits.shape[1] == 0:
                oof_logits = np.zeros((len(y), lo.shape[1]))
            oof_logits[te] = lo
            stats = fit_mahalanobis(*_with_replay(ftr, y[tr], ft, replay))
            oof_scores[te] = stats.score(fe)
            q = float(p.get("ood_quantile", 0.99))
            in_q.append(float(np.quantile(stats.score(ftr), q)))
            ratio.append(float(np.quantile(stats.score(fe), q) / max(1e-9, in_q[-1])))
            done += steps
            on_event(ProgressEvent("metric", step=done, total=total,
                                   values={f"fold{f}_accuracy": float((lo.argmax(1) == y[te]).mean())}))
    ft = tune(np.arange(len(y)), job.seed * 100 + 99)
    done += steps
    lo_all, fe_all = logits_and_features(ft.model, x)
    feats, labs = _with_replay(fe_all, y, ft, replay)
    stats = fit_mahalanobis(feats, labs)
    q = float(p.get("ood_quantile", 0.99))
    in_sample = float(np.quantile(stats.score(fe_all), q))
    stats.threshold = in_sample * (float(np.mean(ratio)) if ratio else 1.5)
    refuse = stats.threshold * float(p.get("refuse_margin", 2.0))
    stats.save(out / OOD_FILE)

    report: dict[str, Any] = {"folds": k, "n": int(len(y)), "steps": steps, "batch_size": bs, "lr": lr}
    card_extra: dict[str, Any] = {}
    if oof_logits.shape[1]:
        pred = oof_logits.argmax(1)
        report["cv"] = _metrics(y, pred, oof_logits.shape[1])
        report["fold0"] = _metrics(y[folds == 0], pred[folds == 0], oof_logits.shape[1])
        temperature = fit_temperature(oof_logits, y)
        report["ece_before"] = expected_calibration_error(softmax(oof_logits), y)
        report["ece_after"] = expected_calibration_error(softmax(oof_logits, temperature), y)
        report["temperature"] = temperature
        report["ece_after_crossfit"] = crossfit_ece(oof_logits, y, folds)
        # how often a real ECG the model did not train on is flagged: each fold's threshold is set as the shipped
        # one is (its in-sample quantile times the out-of/in-sample ratio), the ratio taken from the other folds
        flagged = []
        for f in range(k):
            others = [r for i, r in enumerate(ratio) if i != f] or ratio
            flagged.append(oof_scores[folds == f] > in_q[f] * float(np.mean(others)))
        report["oof_flagged"] = float(np.mean(np.concatenate(flagged)))
        report["oof_refused"] = float(np.mean(np.concatenate(
            [oof_scores[folds == f] > float(p.get("refuse_margin", 2.0)) * in_q[f] * float(np.mean(ratio))
             for f in range(k)])))
        report["oof_scores"] = np.round(oof_scores, 3).tolist()
        report["oof_logits"] = np.round(oof_logits, 4).tolist()
        report["folds_of"] = folds.tolist()
        report["files"] = list(real.get("files", []))
        card_extra["calibration"] = {"temperature": round(temperature, 4), "min_confidence": 0.6,
                                     "ece_before": round(report["ece_before"], 4),
                                     "ece_after": round(report["ece_after"], 4),
                                     "fitted_on": f"{k}-fold out-of-fold logits of the real labelled set"}
    card_extra["ood"] = {"file": OOD_FILE, "sha256": sha256_file(out / OOD_FILE),
                         "method": "Mahalanobis distance to the nearest class mean, shared shrunk covariance",
                         "threshold": round(stats.threshold, 3), "refuse": round(refuse, 3),
                         "quantile": q, "cv_ratio": round(float(np.mean(ratio)), 4) if ratio else None}
    report["seconds"] = time.perf_counter() - t_start
    report["refuse_margin"] = float(p.get("refuse_margin", 2.0))
    (out / "realft-report.json").write_text(json.dumps(report, indent=1))
    card = dict(p.get("card") or {})
    labels = list(card.get("labels") or [])
    card["metrics"] = [*report_metrics(report, labels, str(card.pop("real_dataset", "real labelled images")),
                                      job.seed),
                       *list(card.get("metrics") or [])]
    card["provenance"] = {**dict(card.get("provenance") or {}), "training_seconds": round(report["seconds"], 1),
                          "torch": str(torch.__version__), "threads": threads, "steps_per_fold": steps,
                          "data_seed": job.seed,
                          "folds": k, "batch_size": bs, "lr": lr,
                          "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _export(ft, out, card, card_extra, x[:2])
    on_event(ProgressEvent("finished", step=total, total=total,
                           values={"accuracy_cv": report.get("cv", {}).get("accuracy", float("nan")),
                                   "seconds": report["seconds"]}))
    return "finished"


def report_metrics(report: dict[str, Any], labels: list[str], dataset: str, seed: int = 0) -> list[dict[str, Any]]:
    """The card's [[metrics]] of a real-image fine-tune: k-fold CV and fixed-split (fold 0) accuracy, macro-F1,
    per-class recall, and the out-of-fold ECE before and after temperature scaling."""
    out: list[dict[str, Any]] = []
    for key, what in (("cv", f"{report['folds']}-fold CV by image, out-of-fold"), ("fold0", "fixed split: fold 0")):
        part = report.get(key)
        if not part:
            continue
        n = int(np.sum(part["confusion"]))
        for name in ("accuracy", "macro_f1"):
            out.append({"name": f"{name}_real_{key}", "value": round(float(part[name]), 4), "n": n,
                        "dataset": f"{dataset} ({what})"})
        for lab, r in zip(labels, part["recall"], strict=False):
            out.append({"name": f"recall_real_{key}_{lab}", "value": round(float(r), 4),
                        "dataset": f"{dataset} ({what})"})
    for name in ("ece_before", "ece_after", "ece_after_crossfit"):
        if name in report:
            out.append({"name": f"{name}_real_cv", "value": round(float(report[name]), 4),
                        "dataset": f"{dataset} (out-of-fold logits, 15 bins)"})
    for name in ("oof_flagged", "oof_refused"):
        if name in report:
            out.append({"name": f"ood_{name}_real_cv", "value": round(float(report[name]), 4),
                        "dataset": f"{dataset} (out-of-fold: share of real ECGs flagged / refused as unlike training)"})
    return [{**m, "seed": seed} for m in out]  # the seed of the folds and of the fine-tuning runs


def _with_replay(feats: np.ndarray, labels: np.ndarray, ft: FineTuned, replay: tuple[np.ndarray, np.ndarray] | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Training features of the real set plus (a sample of) the replayed synthetic set: the OOD model's idea of
    "an ECG" covers both."""
    if replay is None:
        return feats, labels
    n = min(len(replay[0]), 2000)
    _, fr = logits_and_features(ft.model, replay[0][:n])
    return np.concatenate([feats, fr]), np.concatenate([labels, replay[1][:n]])


def _export(ft: FineTuned, out: Path, card: dict[str, Any], extra: dict[str, Any], example: np.ndarray) -> None:
    model_dir = out / "model"
    wrapped = WithFeatures(ft.model).eval()
    ex = torch.from_numpy(np.ascontiguousarray(example, np.float32))
    fields = {**card, "extra": extra, "arch": {"family": type(ft.model).__name__, **ft.config.to_dict()}}
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / OOD_FILE).write_bytes((out / OOD_FILE).read_bytes())  # the card lists it: checked on export
    export_onnx(wrapped, ex, model_dir, fields, output_name=["logits", "features"])
    extra = {**extra, "explain": export_rollout(ft.model, ex, model_dir)}
    c = read_card(model_dir)
    c.extra.update(extra)
    write_card(model_dir, c)
    ck = ft.checkpoint
    torch.save({"format": ck["format"], "version": ck["version"], "config": ft.config.to_dict(),
                "model": ft.model.state_dict(), "model_name": ck.get("model_name"), "spec": ck.get("spec")},
               model_dir / "checkpoint.pt")
