"""Write the figures of bench/holo_autofocus_indep.py runs (its --json files) into the autofocus model card's
[[metrics]] — heldout_both_<method>_{mae_um,median_um,max_um,ms} (with a background) and nobg_both_… (without) —
the measurements the Auto method chooses by (plugins/holography/auto.py). Replaces earlier entries of those names.

    .venv/bin/python bench/holo_card_metrics.py --bg out_bg.json --nobg out_nobg.json"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.card import read_card, write_card  # noqa: E402

MODEL_DIR = Path(__file__).resolve().parents[1] / "plugins" / "holography" / "models" / "holo-autofocus-tvit"
METHODS = ("sweep", "vit", "vit+refine")


def entries(path: Path, prefix: str) -> list[dict]:
    d = json.loads(path.read_text())
    a = d["args"]
    summ = d["by_sim"]["both"]["summary"]
    where = (f"bench/holo_autofocus_indep.py --scopes {a['scopes']} --frames {a['frames']} --calib {a['calib']} "
             f"--size {a['size']} --seed {a['seed']}{' --no-background' if a['no_background'] else ''}: held-out "
             f"microscopes of the training simulator (held-out kinds/carriers, both tilts) and of the independent "
             f"simulator, sign calibrated per microscope ({d['sign_right']} right)")
    out = []
    for m in METHODS:
        s = summ.get(m)
        if not s:
            continue
        key = m.replace("+", "_")
        for stat, name in (("mae_um", "mae_um"), ("median_um", "median_um"), ("max_um", "max_um"),
                           ("ms_median", "ms")):
            e = {"name": f"{prefix}{key}_{name}", "value": float(s[stat]), "dataset": where, "seed": int(a["seed"]),
                 "n": int(s["n"])}
            if name == "ms":
                e["note"] = "median ms per 512² frame, shared 2-core machine (other jobs running)"
            out.append(e)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bg", type=Path, required=True)
    ap.add_argument("--nobg", type=Path, default=None)
    ap.add_argument("--model", type=Path, default=MODEL_DIR)
    a = ap.parse_args()
    new = entries(a.bg, "heldout_both_") + (entries(a.nobg, "nobg_both_") if a.nobg else [])
    card = read_card(a.model)
    names = {e["name"] for e in new}
    card.metrics = [m for m in card.metrics if m.get("name") not in names] + new
    write_card(a.model, card)
    for e in new:
        print(f"{e['name']} = {e['value']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
