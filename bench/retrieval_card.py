"""Ship the trained DCAL embedder: copy the exported folder into plugins/retrieval/models/retrieval-dcal-vit with its
recipe and write the held-out metrics measured by bench/retrieval_eval.py (synthetic re-ID and real
class-disjoint, beside the SA-only twin and the classical baselines) into its card.

    .venv/bin/python bench/retrieval_card.py --model /tmp/dcal/dcal --bench /tmp/retrieval_bench.json \
        --recipe /tmp/dcal_recipe.toml [--compress bench/results/retrieval_compress.json]"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.card import Artifact, read_card, sha256_file, write_card  # noqa: E402
from app.core.zoo import golden_check, open_folder  # noqa: E402

DEST = ROOT / "plugins" / "retrieval" / "models" / "retrieval-dcal-vit"
CHECKPOINT_FILE = "checkpoint.pt"  # torch weights a wizard fine-tune starts from


def _verdict(q: dict, part: str, other: str) -> str:
    a, b = q[part]["dcal"], q[part][other]
    r1 = "cmc" if part == "synthetic" else "recall"
    wins = [a["map"] > b["map"], a[r1]["1"] > b[r1]["1"]]
    return "beats" if all(wins) else ("does not beat" if not any(wins) else "is level with")


def describe(bench: dict, prov: dict) -> str:
    """The card's description, its claims read off the benchmark run rather than written by hand."""
    q = bench["quality"]
    syn, real = q["synthetic"]["dcal"], q["real"].get("dcal")
    text = ("Tiny ViT image embedder trained with dual cross-attention learning (DCAL: SA blocks, a GLCA block on the "
            "top-30% attention-rollout tokens, training-only PWCA) for fine-grained search and re-identification; "
            "64x64 RGB in, a 256-d unit embedding out (SA and GLCA features concatenated). Trained on a synthetic "
            f"re-ID generator plus 100 imagen150 photo classes for {prov.get('steps')} steps on a 2-core CPU. "
            f"Held-out synthetic re-ID: mAP {syn['map']:.3f}, rank-1 {syn['cmc']['1']:.3f}; it "
            f"{_verdict(q, 'synthetic', 'sa-twin')} its SA-only twin there")
    if real is not None:
        best = max((n for n in q["real"] if n not in ("dcal", "sa-twin")), key=lambda n: q["real"][n]["map"])
        text += (f". Real class-disjoint photos (50 unseen classes): mAP {real['map']:.3f}, Recall@1 "
                 f"{real['recall']['1']:.3f}; it {_verdict(q, 'real', 'sa-twin')} the twin and "
                 f"{_verdict(q, 'real', best)} the best classical baseline ({best})")
    return text + ". Photos of kinds it never saw get weak embeddings: fine-tune it on your own labelled folders."


def metric_rows(bench: dict) -> list[dict]:
    q = bench["quality"]
    syn, real = q["synthetic"]["dcal"], q["real"].get("dcal")
    s_set = q["synthetic_set"]
    syn_name = (f"plugins.retrieval.synthetic:write_market_layout seed={s_set['seed']} ({s_set['identities']} "
                f"held-out identities, market1501 protocol, {s_set['queries']} queries / {s_set['gallery']} gallery)")
    rows = [{"name": "synthetic_map", "value": syn["map"], "dataset": syn_name, "seed": s_set["seed"],
             "n": s_set["queries"]},
            {"name": "synthetic_rank1", "value": syn["cmc"]["1"], "dataset": syn_name, "seed": s_set["seed"],
             "n": s_set["queries"]},
            {"name": "synthetic_minp", "value": syn["minp"], "dataset": syn_name, "seed": s_set["seed"],
             "n": s_set["queries"]}]
    if real is not None:
        r_name = ("imagen150 class-disjoint evaluation classes (50 classes x 5 real photos, never trained on; "
                  "each image queries the other 249)")
        rows += [{"name": "real_map", "value": real["map"], "dataset": r_name, "seed": 0, "n": real["queries"]},
                 {"name": "real_recall_at_1", "value": real["recall"]["1"], "dataset": r_name, "seed": 0,
                  "n": real["queries"]},
                 {"name": "real_recall_at_8", "value": real["recall"]["8"], "dataset": r_name, "seed": 0,
                  "n": real["queries"]}]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True, help="exported DCAL model folder")
    ap.add_argument("--bench", required=True, help="JSON written by bench/retrieval_eval.py")
    ap.add_argument("--recipe", required=True,
                    help="the recipe (real_root relative to plugins/retrieval/models/retrieval-dcal-vit)")
    ap.add_argument("--compress", default=None, help="JSON written by bench/retrieval_compress.py")
    args = ap.parse_args()
    bench = json.loads(Path(args.bench).read_text())
    DEST.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "golden.npz"):
        shutil.copy(Path(args.model) / name, DEST / name)
    ckpt = Path(str(Path(args.model)) + ".pt")  # what `python -m app.train.dcal_train --out DIR` saves beside DIR
    shutil.copy(ckpt, DEST / CHECKPOINT_FILE)
    shutil.copy(args.recipe, DEST / "recipe.toml")
    card = read_card(args.model)
    card.id = "retrieval-dcal-vit"
    card.version = "0.1.0"
    card.description = describe(bench, card.provenance)
    card.metrics = metric_rows(bench)
    q = bench["quality"]
    card.extra["comparison"] = {
        "note": "same held-out sets, same protocol, one run of bench/retrieval_eval.py",
        **{f"{name}_{part}": {k: v for k, v in q[part][name].items() if k in ("map", "minp", "cmc", "recall")}
           for part in ("synthetic", "real") for name in q[part]},
        "paper_deltas": "DCAL paper (Zhu et al., CVPR 2022): DeiT-Tiny CUB top-1 82.1 -> 84.6 (+2.5); "
                        "re-ID mAP gains, e.g. DeiT-Tiny +2.8 on MSMT17",
    }
    if args.compress:
        comp = json.loads(Path(args.compress).read_text())
        card.extra["compression"] = {
            "note": "bench/retrieval_compress.py: int8 (static QDQ of the weight products, calibrated on training "
                    "images) vs this fp32 model, same held-out sets and protocol",
            **{k: {"bytes": comp[k]["bytes"], "synthetic_map": comp[k]["synthetic"]["map"],
                   "synthetic_rank1": comp[k]["synthetic"]["cmc"]["1"],
                   **({"real_map": comp[k]["real"]["map"], "real_recall_at_1": comp[k]["real"]["recall"]["1"]}
                      if "real" in comp[k] else {})} for k in ("fp32", "int8")},
            "latency_ms": comp["latency_ms"],
            "int8_max_abs_diff_vs_fp32": comp.get("int8_record", {}).get("max_abs_diff_vs_fp32", "not recorded"),
            "depth_reparameterization": comp["depth_reparameterization"]}
    if "indexing" in bench:
        card.extra["speed"] = {k: bench[k] for k in ("indexing", "exact", "graph") if bench.get(k)}
    card.sidecars = [a for a in card.sidecars if a.role != "checkpoint"]
    # optional: search runs without it; only a fine-tune (torch, not in the packaged app) needs it
    card.sidecars.append(Artifact("checkpoint", CHECKPOINT_FILE, sha256_file(DEST / CHECKPOINT_FILE),
                                  (DEST / CHECKPOINT_FILE).stat().st_size, optional=True))
    write_card(DEST, card)
    diff = golden_check(open_folder(DEST))
    print(f"{DEST}: shipped, golden diff {diff:.2g}; metrics: "
          + ", ".join(f"{m['name']} {m['value']:.4f}" for m in card.metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
