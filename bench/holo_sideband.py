"""How often the sideband (sign of z) is told right from the specimen alone (sideband.specimen_sideband), per object
kind, on the training simulator (both reference tilts) and, with --indep, on the independent simulator."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from plugins.holography.optics import Optics, preset  # noqa: E402
from plugins.holography.physics import Scene, camera, draw_session, session_sideband  # noqa: E402
from plugins.holography.sideband import specimen_sideband  # noqa: E402

KINDS = ("usaf", "grid", "dots", "siemens", "cells", "cluster", "fibres", "beads", "rbc")


def training_sim(n: int, size: int, seed: int):
    """(kind, frame, background, optics, true sideband) from the training simulator, tilts alternating."""
    base = preset("dhm-offaxis-10x").optics
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        kind = KINDS[i % len(KINDS)]
        s = draw_session("dhm-offaxis-10x", rng, sideband="-1" if (i // len(KINDS)) % 2 else "+1")
        o = base.with_(na=s.na)
        sc, empty = Scene(o, s, (size, size), kind, rng), Scene(o, s, (size, size), None, rng)
        lvl = sc.background_level()
        z = float(rng.uniform(-40e-6, 40e-6))
        yield kind, camera(sc.intensity(z), s, lvl, rng), camera(empty.intensity(0.0), s, lvl, rng), o, \
            session_sideband(s)


def indep_sim(n: int, size: int, seed: int):
    from bench.holo_indep_sim import draw_microscope, render_frame

    for i in range(n):
        rng = np.random.default_rng([seed, 77, i])
        scope = draw_microscope(rng, size)
        fr = render_frame(scope, rng, float(rng.uniform(-40e-6, 40e-6)))
        yield fr.kind, fr.hologram, scope.background(rng), Optics.from_dict(scope.optics_attrs()), scope.sideband


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=36)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--indep", action="store_true", help="the independent simulator instead")
    ap.add_argument("--no-background", action="store_true")
    a = ap.parse_args()
    gen = indep_sim(a.n, a.size, a.seed) if a.indep else training_sim(a.n, a.size, a.seed)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # right, wrong, cannot tell
    for kind, frame, bg, optics, truth in gen:
        g = specimen_sideband(frame, optics, None if a.no_background else bg)
        t = tally[kind]
        t[2 if g.sideband is None else (0 if g.sideband == truth else 1)] += 1
    tot = np.sum(list(tally.values()), axis=0)
    out = {"simulator": "independent" if a.indep else "training", "frames": int(tot.sum()),
           "right": int(tot[0]), "wrong": int(tot[1]), "cannot_tell": int(tot[2]),
           "per_kind": {k: dict(zip(("right", "wrong", "cannot_tell"), v, strict=True)) for k, v in tally.items()}}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
