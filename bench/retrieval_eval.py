"""Retrieval benchmark, side by side in one run: DCAL vs its SA-only twin vs classical baselines on (1) the
synthetic re-ID held-out set and (2) a class-disjoint split of the real imagen150 photos; then speed: indexing
images/s, exact query time at 1e5 items, HNSW graph vs exact at 1e6 synthetic vectors, memory per item.

    OMP_NUM_THREADS=2 .venv/bin/python bench/retrieval_eval.py --dcal plugins/retrieval/models/retrieval-dcal-vit \
        --twin /tmp/dcal/twin --out /tmp/retrieval_bench.json [--skip-speed] [--graph-n 1000000]

Real split (fixed, written down): the 150 class folders sorted by name; classes at index i with i % 3 == 2 (50
classes, 250 photos) are evaluation classes, the other 100 are the only ones a model may train on. The photos are
read from ../shared/data/retrieval/imagen150 and never copied into the repository."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.vector_index import ExactIndex, GraphIndex, l2_normalise  # noqa: E402
from app.core.zoo import open_folder  # noqa: E402
from plugins.retrieval.embedders import OnnxEmbedder, baseline  # noqa: E402
from plugins.retrieval.engine import evaluate, index_folders  # noqa: E402
from plugins.retrieval.layouts import read_folders, read_market1501  # noqa: E402
from plugins.retrieval.synthetic import write_market_layout  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "retrieval" / "imagen150"
HELDOUT_SEED = 20261203
HELDOUT_IDS = 200


def real_split(root: Path = REAL) -> tuple[list[str], list[str]]:
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    return [n for i, n in enumerate(names) if i % 3 != 2], [n for i, n in enumerate(names) if i % 3 == 2]


def real_eval_folder(tmp: Path) -> Path:
    """The 50 evaluation classes as a `folders` layout of symbolic links (nothing copied)."""
    out = tmp / "real-eval"
    _, ev = real_split()
    out.mkdir(parents=True, exist_ok=True)
    for c in ev:
        if not (out / c).exists():
            (out / c).symlink_to(REAL / c, target_is_directory=True)
    return out


def embedders(args: argparse.Namespace) -> dict:
    out = {}
    for name, folder in (("dcal", args.dcal), ("sa-twin", args.twin)):
        if folder:
            out[name] = OnnxEmbedder(open_folder(Path(folder), threads=2))
    for b in ("colour-hist", "hog", "hist+hog"):
        out[b] = baseline(b)
    return out


def quality(embs: dict, tmp: Path, rerank: bool) -> dict:
    syn_root = write_market_layout(tmp / "syn-heldout", n_ids=HELDOUT_IDS, seed=HELDOUT_SEED, views=6)
    syn = read_market1501(syn_root)
    real = read_folders(real_eval_folder(tmp)) if REAL.is_dir() else None
    res: dict = {"synthetic": {}, "real": {}}
    for name, e in embs.items():
        m = evaluate(syn, e)
        res["synthetic"][name] = m.to_json()
        if rerank and name in ("dcal", "sa-twin"):
            res["synthetic"][name + "+rerank"] = evaluate(syn, e, rerank=True).to_json()
        if real is not None:
            res["real"][name] = evaluate(real, e).to_json()
        print(f"{name:12s} synthetic mAP {m.map:.4f} R1 {m.cmc['1']:.4f} mINP {m.minp:.4f}"
              + (f" | real mAP {res['real'][name]['map']:.4f} R@1 {res['real'][name]['recall']['1']:.4f}"
                 if real is not None else ""), flush=True)
    res["synthetic_set"] = {"generator": "plugins.retrieval.synthetic:write_market_layout", "seed": HELDOUT_SEED,
                            "identities": HELDOUT_IDS, "views": 6, "queries": len(syn.query),
                            "gallery": len(syn.gallery), "protocol": "market1501 (same id + same camera removed)"}
    if real is not None:
        res["real_set"] = {"root": "imagen150", "classes": list(real.class_names), "images": len(real.query),
                           "protocol": "each image queries the other 249 (Recall@K / mAP, class-disjoint)"}
    return res


def index_speed(emb, tmp: Path) -> dict:
    """Decode + embed throughput of `index_folders` on the 750 real photos (≤ 256 px)."""
    db = tmp / "speed.vdb"
    c = time.process_time()
    rep = index_folders([REAL], db, emb)
    cpu = time.process_time() - c
    return {"images": rep.embedded, "embed_seconds": round(rep.embed_seconds, 3), "process_cpu_seconds": round(cpu, 2),
            "images_per_cpu_s": round(rep.embedded / cpu, 1),
            "images_per_s": round(rep.embedded / rep.embed_seconds, 1), "total_seconds": round(rep.seconds, 3)}


def _clustered(n: int, d: int, seed: int, centres: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        out[s:s + m] = c[rng.integers(0, centres, m)] + 0.6 * rng.standard_normal((m, d)).astype(np.float32)
    return l2_normalise(out)


def _timed_searches(index: ExactIndex | GraphIndex, queries: np.ndarray,
                    k: int = 10) -> tuple[list[np.ndarray], float, float]:
    """Each query row searched on its own: (its top-k ids, median wall ms, median CPU ms per query)."""
    found, wall, cpu = [], [], []
    for i in range(len(queries)):
        t, c = time.perf_counter(), time.process_time()
        ids, _ = index.search(queries[i:i + 1], k)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        found.append(ids[0])
    return found, statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def exact_query_ms(n: int, d: int, runs: int = 30) -> dict:
    idx = ExactIndex(d)
    idx.add(np.arange(n), _clustered(n, d, 1))
    q = _clustered(1, d, 2)
    idx.search(q, 10)
    _, ms, cpu_ms = _timed_searches(idx, np.repeat(q, runs, axis=0))
    return {"n": n, "dim": d, "median_ms": round(ms, 2), "median_cpu_ms": round(cpu_ms, 2),
            "memory_bytes_per_item": idx.nbytes() / n, "disk_bytes_per_item_float16": 2 * d + 8}


def graph_vs_exact(n: int, d: int, n_queries: int = 200, ef: tuple[int, ...] = (64, 128, 256, 512, 1024)) -> dict:
    x = _clustered(n, d, 3)
    rng = np.random.default_rng(4)
    q = l2_normalise(x[rng.integers(0, n, n_queries)] + 0.05 * rng.standard_normal((n_queries, d)))
    t = time.perf_counter()
    g = GraphIndex(d)
    g.add(np.arange(n), x)
    build = time.perf_counter() - t
    exact = ExactIndex(d, "float32")
    exact.add(np.arange(n), x)
    del x
    ex_ids, ex_ms, ex_cpu_ms = _timed_searches(exact, q)
    out = {"n": n, "dim": d, "build_seconds": round(build, 1), "graph_bytes_per_item": g.nbytes() / n,
           "exact_median_ms": round(ex_ms, 2), "exact_median_cpu_ms": round(ex_cpu_ms, 2), "by_expansion": []}
    for e in ef:
        g._index.expansion_search = e
        got, med, med_cpu = _timed_searches(g, q)
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, ex_ids, strict=True)]))
        out["by_expansion"].append({"expansion_search": e, "recall_at_10": round(recall, 4),
                                    "median_ms": round(med, 3), "median_cpu_ms": round(med_cpu, 3),
                                    "speedup_vs_exact": round(out["exact_median_ms"] / med, 1),
                                    "cpu_speedup_vs_exact": round(out["exact_median_cpu_ms"] / max(med_cpu, 1e-6),
                                                                  1)})
        print(f"graph n={n} ef={e}: recall@10 {recall:.4f}, {med:.3f} ms/query wall, {med_cpu:.3f} ms CPU "
              f"({out['exact_median_ms'] / med:.0f}x faster than exact)", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dcal", default=None, help="DCAL model folder")
    ap.add_argument("--twin", default=None, help="SA-only twin model folder")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--rerank", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--graph-n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    args = ap.parse_args()
    res: dict = {"threads": os.environ.get("OMP_NUM_THREADS", "unset"), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        embs = embedders(args)
        if not args.skip_quality:
            res["quality"] = quality(embs, tmp, args.rerank)
        if not args.skip_speed:
            if "dcal" in embs and REAL.is_dir():
                res["indexing"] = index_speed(embs["dcal"], tmp)
                print(f"indexing: {res['indexing']}", flush=True)
            res["exact"] = [exact_query_ms(n, args.dim) for n in (10_000, 100_000, 300_000)]
            for r in res["exact"]:
                print(f"exact n={r['n']}: {r['median_ms']} ms/query", flush=True)
            if args.graph_n:
                res["graph"] = graph_vs_exact(args.graph_n, args.dim)
    text = json.dumps(res, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text if not args.out else f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
