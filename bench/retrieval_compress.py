"""Compression report of the DCAL embedder: int8 (the core's static QDQ quantization of the weight products,
calibrated on training images only) against the fp32 model on the same held-out sets and protocol as
bench/retrieval_eval.py, plus size and interleaved latency (batch 1, 2 threads).

    OMP_NUM_THREADS=2 .venv/bin/python bench/retrieval_compress.py --model plugins/retrieval/models/retrieval-dcal-vit \
        --out bench/results/retrieval_compress.json"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.io.images import read_image  # noqa: E402
from app.core.zoo import open_folder  # noqa: E402
from bench.retrieval_eval import HELDOUT_IDS, HELDOUT_SEED, REAL, real_eval_folder, real_split  # noqa: E402
from plugins.retrieval.embedders import OnnxEmbedder  # noqa: E402
from plugins.retrieval.engine import evaluate  # noqa: E402
from plugins.retrieval.layouts import read_folders, read_market1501  # noqa: E402
from plugins.retrieval.synthetic import make_split, write_market_layout  # noqa: E402

CALIB_SEED = 1  # the training generator's seed: calibration never sees a held-out identity


def calibration(size: int, n_syn_ids: int = 48, real_per_class: int = 1) -> np.ndarray:
    """Training images only: synthetic identities of the training seed and the training photo classes, normalised
    as the model expects (x/255 − 0.5) / 0.5, NCHW float32."""
    import cv2

    x, _, _ = make_split(n_syn_ids, 4, CALIB_SEED, size)
    imgs = list(x)
    if REAL.is_dir():
        for c in real_split()[0]:
            for f in sorted((REAL / c).iterdir())[:real_per_class]:
                imgs.append(cv2.resize(read_image(f), (size, size), interpolation=cv2.INTER_AREA))
    a = np.stack(imgs).astype(np.float32) / 255.0
    return ((a - 0.5) / 0.5).transpose(0, 3, 1, 2).copy()


def latency(folders: dict[str, Path], size: int, runs: int = 60) -> dict:
    sess = {k: open_folder(v, threads=2).session for k, v in folders.items()}
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in sess}
    for i in range(runs + 5):
        for k, s in sess.items():
            t0 = time.perf_counter()
            s.run(None, {s.get_inputs()[0].name: x})
            if i >= 5:
                times[k].append(1000 * (time.perf_counter() - t0))
    return {k: round(statistics.median(v), 3) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="fp32 DCAL model folder")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from app.train.int8 import quantize_folder

    fp32 = Path(args.model)
    size = int(open_folder(fp32).card.inputs[0].shape[-1])
    res: dict = {"model": fp32.name}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        calib = calibration(size)
        card = quantize_folder(fp32, tmp / "int8", calib, latency_runs=5)
        folders = {"fp32": fp32, "int8": tmp / "int8"}
        res["calibration"] = {"images": len(calib), "source": f"synthetic training seed {CALIB_SEED} + one photo "
                                                               "of each training class"}
        res["int8_record"] = card.section("int8")
        syn = read_market1501(write_market_layout(tmp / "syn", n_ids=HELDOUT_IDS, seed=HELDOUT_SEED, views=6))
        real = read_folders(real_eval_folder(tmp)) if REAL.is_dir() else None
        for name, folder in folders.items():
            emb = OnnxEmbedder(open_folder(folder, threads=2))
            row = {"bytes": (folder / "model.onnx").stat().st_size, "synthetic": evaluate(syn, emb).to_json()}
            if real is not None:
                row["real"] = evaluate(real, emb).to_json()
            res[name] = row
            print(f"{name}: {row['bytes'] / 1e6:.2f} MB, synthetic mAP {row['synthetic']['map']:.4f}"
                  + (f", real mAP {row['real']['map']:.4f} R@1 {row['real']['recall']['1']:.4f}" if real else ""),
                  flush=True)
        res["latency_ms"] = latency(folders, size)
        res["latency_ms"]["int8_over_fp32"] = round(res["latency_ms"]["int8"] / res["latency_ms"]["fp32"], 3)
        print(f"latency {res['latency_ms']}", flush=True)
    res["depth_reparameterization"] = (
        "not applied: the core's depth reparameterization merges blocks of its own ViT family; in DcalViT the GLCA "
        "block picks its queries from the attention rollout of every SA block, so merging blocks changes which "
        "tokens it reads")
    text = json.dumps(res, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text if not args.out else f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
