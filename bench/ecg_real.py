"""ECG screening on real data: the real-image fine-tune's cross-validated metrics (its realft-report.json), the OOD
flag (AUROC of real ECG pages vs real photos and noise pages, how often real ECGs are flagged), confident answers on
inputs that cannot carry one (must be zero), and throughput with gating and OOD scoring included.

    .venv/bin/python bench/ecg_real.py [--model plugins/ecg/models/ecg-screen-vit] [--report DIR/realft-report.json]
        [--photos 150] [--photo-set imagen150|coco] [--files 96] [--json OUT]

Real data come from ../shared/data (tests and benchmarks only): Khan report images, LUDB records, the
ecg-image-kit sample pages, and imagen150 or COCO photographs (never shipped). Photos are upscaled to a 1100 px long
side so that the size check cannot refuse them and the OOD score is what is measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.calibration import expected_calibration_error, softmax  # noqa: E402
from app.core.errors import VitascopeError  # noqa: E402
from app.core.host import HeadlessHost  # noqa: E402
from app.core.io.images import read_image  # noqa: E402
from app.core.ood import auroc  # noqa: E402
from plugins.ecg import readers  # noqa: E402
from plugins.ecg.engine import EcgEngine  # noqa: E402
from plugins.ecg.types import CLASSES, EcgInput  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
CONFIDENT = 0.8


def engine_for(model: str) -> EcgEngine:
    host = HeadlessHost()
    eng = EcgEngine(host)
    eng.use_handle(host.zoo.open(Path(model)))
    return eng


PHOTO_SETS = {"imagen150": ("retrieval/imagen150", "*/*.jpg"), "coco": ("clip/coco/images", "*.jpg")}


def photo_inputs(n: int, photo_set: str = "imagen150") -> list[EcgInput]:
    folder, pattern = PHOTO_SETS[photo_set]
    files = sorted((SHARED / folder).glob(pattern))
    out = []
    for f in files[:: max(1, len(files) // n)][:n]:
        img = read_image(f)
        s = 1100 / max(img.shape[:2])
        out.append(EcgInput(str(f), cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)))
    return out


def noise_inputs(n: int) -> list[EcgInput]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            img = rng.integers(0, 256, (780, 1100, 3), dtype=np.uint8)
        elif kind == 1:
            img = np.clip(128 + 60 * rng.standard_normal((780, 1100, 3)), 0, 255).astype(np.uint8)
        elif kind == 2:  # smooth blobs: passes the noise check, must be caught by OOD
            img = cv2.GaussianBlur(rng.integers(0, 256, (780, 1100, 3), dtype=np.uint8), (0, 0), 8)
            img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)
        else:  # a page of random strokes on white
            img = np.full((780, 1100, 3), 255, np.uint8)
            for _ in range(40):
                p = rng.integers(0, [1100, 780], (2, 2))
                cv2.line(img, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), (0, 0, 0), 2)
        out.append(EcgInput(f"noise-{kind}-{i}", img))
    return out


def real_ecg_inputs(n: int) -> tuple[list[EcgInput], list[EcgInput], list[EcgInput]]:
    khan = [EcgInput(str(f), read_image(f)) for f in sorted((SHARED / "ecg-real" / "khan").glob("*/*.jpg"))[:: 2][:n]]
    kit = [EcgInput(str(f), read_image(f)) for f in sorted((SHARED / "ecg" / "images").glob("*.*g"))]
    ludb = []
    for f in sorted((SHARED / "ecg-real" / "ludb").glob("*.hea"))[:: 4]:
        ludb += readers.read_inputs(f)
    return khan, kit, ludb


def screen_outcomes(eng: EcgEngine, inputs: list[EcgInput]) -> dict[str, int]:
    """How the full pipeline (gates, model, OOD) answers: refused / uncertain / confident (p ≥ 0.8) / other."""
    out = {"refused": 0, "uncertain": 0, "confident": 0, "answered": 0}
    for inp in inputs:
        try:
            r = eng.screen(inp, explain=False)
        except VitascopeError:
            out["refused"] += 1
            continue
        out["answered"] += 1
        out["uncertain"] += int(r.uncertain)
        out["confident"] += int(not r.uncertain and max(r.probabilities.values()) >= CONFIDENT)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "plugins" / "ecg" / "models" / "ecg-screen-vit"))
    ap.add_argument("--report", default="", help="realft-report.json of the fine-tuning run (CV metrics)")
    ap.add_argument("--photos", type=int, default=150)
    ap.add_argument("--photo-set", choices=sorted(PHOTO_SETS), default="imagen150",
                    help="real photographs that are not ECGs: imagen150 (ImageNet classes) or coco (COCO scenes)")
    ap.add_argument("--files", type=int, default=96, help="Khan images for throughput and OOD")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    res: dict = {"model": a.model}
    if a.report:
        rep = json.loads(Path(a.report).read_text())
        logits, y = np.array(rep["oof_logits"]), np.array([CLASSES.index(Path(f).parts[0]) if Path(f).parts[0] in
                                                           CLASSES else -1 for f in rep["files"]])
        res["cv"] = {k: rep["cv"][k] for k in ("accuracy", "macro_f1", "recall", "confusion")}
        res["fold0"] = {k: rep["fold0"][k] for k in ("accuracy", "macro_f1", "recall")}
        res["ece"] = {"before": rep["ece_before"], "after": rep["ece_after"], "temperature": rep["temperature"],
                      "check": expected_calibration_error(softmax(logits, rep["temperature"]), y)}
        res["oof_flagged"], res["oof_refused"] = rep["oof_flagged"], rep.get("oof_refused")
        print(f"real Khan images, {rep['folds']}-fold CV by image (n={rep['n']}): accuracy {rep['cv']['accuracy']:.3f}"
              f", macro-F1 {rep['cv']['macro_f1']:.3f}, recall per class {rep['cv']['recall']}")
        print(f"  fixed held-out split (fold 0): accuracy {rep['fold0']['accuracy']:.3f}, macro-F1 "
              f"{rep['fold0']['macro_f1']:.3f}, recall {rep['fold0']['recall']}")
        print(f"  ECE out-of-fold: {rep['ece_before']:.3f} before, {rep['ece_after']:.3f} after temperature "
              f"{rep['temperature']:.2f}; real ECGs flagged OOD out-of-fold {rep['oof_flagged']:.3f}, refused "
              f"{rep.get('oof_refused', float('nan')):.3f}")
    eng = engine_for(a.model)
    khan, kit, ludb = real_ecg_inputs(a.files)
    photos, noise = photo_inputs(a.photos, a.photo_set), noise_inputs(24)
    s = {name: eng.ood_scores(inp) for name, inp in
         (("khan", khan), ("kit", kit), ("ludb", ludb), ("photos", photos), ("noise", noise))}
    if s["khan"] is None:
        print("the model ships no OOD statistics")
    else:
        thr = eng._ood_stats().threshold  # noqa: SLF001 (the bench reads the loaded threshold)
        real = np.concatenate([s["khan"], s["kit"], s["ludb"]])
        res["ood"] = {"auroc_real_vs_photos": auroc(real, s["photos"]), "auroc_real_vs_noise": auroc(real, s["noise"]),
                      "threshold": thr, "refuse": eng._ood_refuse,  # noqa: SLF001
                      "flagged": {k: float(np.mean(v > thr)) for k, v in s.items()},
                      "median": {k: float(np.median(v)) for k, v in s.items()}}
        print(f"OOD AUROC real ECG pages vs photos {res['ood']['auroc_real_vs_photos']:.4f}, vs noise pages "
              f"{res['ood']['auroc_real_vs_noise']:.4f}; threshold {thr:.1f}, refuse {eng._ood_refuse:.1f}")  # noqa: SLF001
        print("  flagged above threshold: " + ", ".join(f"{k} {v:.3f}" for k, v in res["ood"]["flagged"].items())
              + "  (khan is in the shipped model's training set; kit and ludb are not)")
    res["outcomes"] = {name: screen_outcomes(eng, inp) for name, inp in
                       (("photos", photos), ("noise", noise), ("kit", kit), ("ludb", ludb))}
    print("full pipeline outcomes: " + "; ".join(f"{k}: {v}" for k, v in res["outcomes"].items()))
    n_conf = res["outcomes"]["photos"]["confident"] + res["outcomes"]["noise"]["confident"]
    print(f"confident answers on non-ECG inputs: {n_conf} (target 0)")
    files = [Path(i.source) for i in khan]
    eng.screen_paths(files[:8])
    t0 = time.perf_counter()
    results, errors = eng.screen_paths(files)
    dt = time.perf_counter() - t0
    res["throughput_images_per_s"] = len(files) / dt
    print(f"throughput: {len(files) / dt:.1f} images/s ({len(results)} screened, {len(errors)} refused; decode, "
          "image check, model, OOD; batch 8) — target >= 20")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
