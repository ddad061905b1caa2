"""Speed of the text-search path on this machine: a converted TinyCLIP-ViT-8M-16-Text-3M (random weights, exact
layout) image-encoder latency (onnxruntime, batch 1, 2 threads), a text query end to end (tokenize + encode +
search 10^5 indexed items) and indexing throughput (decode + preprocess + encode) on the real COCO photos.

    python bench/clip_speed.py [--model FOLDER] [--reference TEACHER_FOLDER] [--out bench/results/clip_speed.json]
Without --model a random TinyCLIP-8M checkpoint is written and converted first (needs torch). With --reference, both
models' image and text encoders run interleaved in this process and the latency ratios are printed."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from results_json import report

ROOT = Path(__file__).resolve().parents[1]
COCO = ROOT.parent / "shared" / "data" / "clip" / "coco"


def converted_tinyclip(tmp: Path) -> Path:
    import torch

    from app.train.clip_convert import convert
    from app.train.clip_model import CLIP, TINYCLIP_8M_16

    torch.manual_seed(0)
    ckpt = tmp / "TinyCLIP-ViT-8M-16-Text-3M-random.pt"
    torch.save(CLIP(TINYCLIP_8M_16).state_dict(), ckpt)
    convert(ckpt, tmp / "tinyclip8m", latency_runs=0)
    return tmp / "tinyclip8m"


def ms(times: list[float]) -> dict:
    t = sorted(times)
    return {"median_ms": round(statistics.median(t), 2), "p90_ms": round(t[int(0.9 * (len(t) - 1))], 2),
            "runs": len(t)}


def interleaved(model, reference, runs: int = 300) -> dict:
    """Median latency (batch 1, 2 threads) of each tower of `model` and `reference`, alternating runs so both see
    the same machine load; ratio = model / reference."""
    out: dict = {}
    for role, make in (("image_encoder", lambda m: np.random.default_rng(0).standard_normal(
            (1, 3, m.size, m.size)).astype(np.float32)),
                       ("text_encoder", lambda m: m.tokenizer(["a red circle on the left of a blue square"],
                                                              m.context_length))):
        sess = [(m.handle.session_of(role, threads=2), make(m)) for m in (model, reference)]
        times: list[list[float]] = [[], []]
        for i in range(runs + 5):
            for j, (s, x) in enumerate(sess):
                name = s.get_inputs()[0].name
                t0 = time.perf_counter()
                s.run(None, {name: x})
                if i >= 5:
                    times[j].append(1000 * (time.perf_counter() - t0))
        a, b = statistics.median(times[0]), statistics.median(times[1])
        out[role] = {"model_ms": round(a, 3), "reference_ms": round(b, 3), "ratio": round(a / b, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--index-images", type=int, default=96)
    ap.add_argument("--reference", default=None, help="a second CLIP folder (e.g. the teacher) to compare latency")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from app.core.vector_index import ExactIndex
    from plugins.textsearch.model import ClipModel
    from plugins.textsearch.query import parse_query, query_vector

    tmp = Path(tempfile.mkdtemp(prefix="clip-speed-"))
    folder = Path(args.model) if args.model else converted_tinyclip(tmp)
    m = ClipModel(folder, threads=2)
    res: dict = {"model": m.id, "arch": {k: m.card.arch.get(k) for k in ("vision_width", "vision_layers",
                                                                          "text_width", "text_layers", "params")}}
    # image encoder alone, batch 1, 2 threads
    sess = m.handle.session_of("image_encoder", threads=2)
    x = np.random.default_rng(0).standard_normal((1, 3, m.size, m.size)).astype(np.float32)
    times = []
    for i in range(35):
        t0 = time.perf_counter()
        sess.run(None, {m.image_input: x})
        if i >= 5:
            times.append(1000 * (time.perf_counter() - t0))
    res["image_encoder_batch1_2threads"] = ms(times)
    # text query end to end over N items
    rng = np.random.default_rng(1)
    index = ExactIndex(m.dim, dtype="float16")
    index.add(np.arange(args.items), rng.standard_normal((args.items, m.dim)).astype(np.float32))
    queries = ["a dog on a beach", "cells with two nuclei", "a red car parked at night", "two people riding bikes"]
    times = []
    for i in range(44):
        t0 = time.perf_counter()
        q = query_vector(m, parse_query([queries[i % len(queries)] + f" {i}"]))  # new text: no tokenizer cache hit
        index.search(q[None], 24)
        if i >= 4:
            times.append(1000 * (time.perf_counter() - t0))
    res["text_query_end_to_end"] = {**ms(times), "items": args.items}
    # indexing throughput on real photos: decode + CLIP preprocessing + image encoder, batch 16
    files = sorted((COCO / "images").glob("*.jpg"))[:args.index_images]
    if files:
        m.encode_files(files[:16])
        t0 = time.perf_counter()
        keep, _ = m.encode_files(files, batch=16)
        dt = time.perf_counter() - t0
        res["indexing"] = {"images": len(keep), "seconds": round(dt, 2), "images_per_s": round(len(keep) / dt, 1)}
    if args.reference:
        ref = ClipModel(Path(args.reference), threads=2)
        res["versus_reference"] = {"reference": ref.id, **interleaved(m, ref)}
    import os
    import platform

    res["machine"] = f"{platform.platform()} ({os.cpu_count()} cpus), load {os.getloadavg()[0]:.2f}"
    report(res, args.out)


if __name__ == "__main__":
    main()
