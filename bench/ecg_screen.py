"""ECG screening benchmark: held-out accuracy / macro-F1 per render style, screening throughput (decode +
preprocess + ORT, batched) against decoding alone in the same run, and what the model says about the real files.

    .venv/bin/python bench/ecg_screen.py [--model plugins/ecg/models/ecg-screen-vit] [--n-files 64] \
        [--heldout-per-class 150]
    .venv/bin/python bench/ecg_screen.py --write-card plugins/ecg/models/ecg-screen-vit  # per-style metrics → card
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core import runtime  # noqa: E402
from app.core.card import read_card, write_card  # noqa: E402
from app.core.host import HeadlessHost  # noqa: E402
from app.core.zoo import Zoo  # noqa: E402
from plugins.ecg.engine import EcgEngine  # noqa: E402
from plugins.ecg.types import CLASSES  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "ecg"


def macro_f1(pred: np.ndarray, y: np.ndarray, k: int) -> float:
    f1 = []
    for c in range(k):
        tp = np.sum((pred == c) & (y == c))
        fp = np.sum((pred == c) & (y != c))
        fn = np.sum((pred != c) & (y == c))
        f1.append(2 * tp / max(1, 2 * tp + fp + fn))
    return float(np.mean(f1))


def heldout(folder: Path, seed: int, train_seed: int, train_per_class: int, per_class: int) -> list[dict]:
    """Accuracy / macro-F1 on the recipe's held-out set (seed-disjoint; the training part is rebuilt, from the
    cache, only so that held-out images identical to a training image are dropped)."""
    from plugins.ecg.dataset import heldout_styles, make_dataset

    kw = {"n_per_class": train_per_class, "n_val_per_class": per_class, "size": (256, 352), "train_seed": train_seed}
    _, _, x, y = make_dataset(seed=seed, split="heldout", **kw)
    styles = heldout_styles(seed=seed, **kw)
    sess = runtime.create_session(folder / "model.onnx", threads=2)
    name = sess.get_inputs()[0].name
    logits = np.concatenate([sess.run(None, {name: x[i:i + 64]})[0] for i in range(0, len(x), 64)])
    pred = logits.argmax(1)
    rows = []
    for style in ["all", *sorted(set(styles))]:
        m = np.ones(len(y), bool) if style == "all" else styles == style
        acc = float(np.mean(pred[m] == y[m]))
        f1 = macro_f1(pred[m], y[m], len(CLASSES))
        rows.append({"style": style, "n": int(m.sum()), "accuracy": acc, "macro_f1": f1, "seed": seed})
        print(f"  held-out {style:13s} n={int(m.sum()):4d}  accuracy {acc:.4f}  macro-F1 {f1:.4f}")
    conf = np.zeros((len(CLASSES), len(CLASSES)), int)
    for t, p in zip(y, pred, strict=True):
        conf[t, p] += 1
    print("  confusion (rows true, cols predicted):", CLASSES)
    for c, row in zip(CLASSES, conf, strict=True):
        print(f"    {c:22s} {row}")
    return rows


def throughput(engine: EcgEngine, n_files: int) -> tuple[float, float]:
    from plugins.ecg.render import render
    from plugins.ecg.waveform import simulate

    with tempfile.TemporaryDirectory(prefix="ecg-bench-") as tmp:
        files = []
        for i in range(n_files):
            rec = simulate(CLASSES[i % 4], 5000 + i)
            img = render(rec, style=("clean", "scanned", "photographed")[i % 3], dpi=150, seed=i)
            p = Path(tmp) / f"ecg{i:03d}.jpg"
            cv2.imwrite(str(p), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
            files.append(p)
        engine.screen_paths(files[:8])  # warm-up (session, caches)
        t0 = time.perf_counter()
        for p in files:
            cv2.imread(str(p))
        decode = n_files / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        results, errors = engine.screen_paths(files, batch=8)
        screen = len(results) / (time.perf_counter() - t0)
        assert not errors and len(results) == n_files
    print(f"  throughput: {screen:.1f} images/s screened (decode + preprocess + ORT, 150 dpi JPG pages ~1600x1100) "
          f"vs {decode:.1f} images/s decoding alone: ratio {screen / decode:.2f}; target >= 20 images/s")
    return screen, decode


def real_files(engine: EcgEngine) -> None:
    paths: list[Path] = sorted((SHARED / "images").glob("*.*")) if SHARED.is_dir() else []
    paths = [p for p in paths if p.suffix.lower() in (".png", ".jpg")]
    if (SHARED / "100.hea").is_file():
        paths.append(SHARED / "100.hea")
    try:
        import pydicom.data

        paths.append(Path(pydicom.data.get_testdata_file("waveform_ecg.dcm")))
    except Exception as e:
        print(f"  (pydicom waveform unavailable: {e})")
    results, errors = engine.screen_paths(paths)
    for r in results:
        top = sorted(r.probabilities.items(), key=lambda kv: -kv[1])
        meas = " ".join(f"{k} {v:.0f}" for k, v in r.measurements.items() if k in ("HR", "PR", "QRS", "QTc"))
        print(f"  {Path(r.source.split('#')[0]).name:22s} {r.label:22s} p={top[0][1]:.2f}  {meas}")
    for p, msg in errors:
        print(f"  ERROR {p}: {msg}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "plugins" / "ecg" / "models" / "ecg-screen-vit"))
    ap.add_argument("--n-files", type=int, default=64)
    ap.add_argument("--heldout-per-class", type=int, default=150)
    ap.add_argument("--heldout-seed", type=int, default=20261122, help="the recipe's export.heldout.seed")
    ap.add_argument("--train-per-class", type=int, default=3000, help="the recipe's data n_per_class")
    ap.add_argument("--train-seed", type=int, default=8, help="the recipe's data seed")
    ap.add_argument("--write-card", action="store_true", help="record the per-style held-out metrics on the card")
    args = ap.parse_args()
    folder = Path(args.model)
    card = read_card(folder)
    print(f"# {card.id}: {card.params:,} params, {card.bytes / 1e6:.2f} MB, {card.latency.get('ms')} ms/ECG (card)")
    rows = heldout(folder, args.heldout_seed, args.train_seed, args.train_per_class, args.heldout_per_class)
    host = HeadlessHost(zoo=Zoo())
    engine = EcgEngine(host)
    engine.use_handle(host.zoo.open(folder))
    screen, decode = throughput(engine, args.n_files)
    print("# real files (no labels: what the model says)")
    real_files(engine)
    if args.write_card:
        data = card.to_dict()
        mine = {f"{m}_{s}" for m in ("accuracy", "macro_f1") for s in ("synthetic", *(r["style"] for r in rows))}
        keep = [m for m in data.get("metrics", []) if str(m.get("name", "")) not in mine]
        for r in rows:
            style = "synthetic" if r["style"] == "all" else r["style"]
            where = (f"plugins.ecg.dataset:make_dataset seed={r['seed']} (synthetic held-out"
                     + ("" if r["style"] == "all" else f", {r['style']} renders") + ")")
            keep += [{"name": f"accuracy_{style}", "value": round(r["accuracy"], 4), "dataset": where,
                      "seed": r["seed"], "n": r["n"]},
                     {"name": f"macro_f1_{style}", "value": round(r["macro_f1"], 4), "dataset": where,
                      "seed": r["seed"], "n": r["n"]}]
        data["metrics"] = keep
        data.setdefault("benchmarks", {})["screening_images_per_s"] = round(screen, 1)
        from app.core.card import parse_card

        write_card(folder, parse_card(data, str(folder / "card.toml")))
        print(f"# wrote per-style metrics to {folder / 'card.toml'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
