"""`vitascope retrieval index | search | eval`: bad input raises BadInput (exit 2, one line on stderr).
`index` is incremental and reports progress on stderr; `search --json` prints {"model", "results": [{"file",
"score"}]}; `eval --json` prints {"model", "queries", "gallery", "map", "minp", "cmc", "recall"}."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from app.core.errors import BadInput

from .layouts import LAYOUTS


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("retrieval", help="image retrieval / re-identification (index, search, eval)")
    sub = p.add_subparsers(dest="retrieval_cmd", required=True)

    i = sub.add_parser("index", help="index image folders (recursive, incremental) into a catalogue")
    i.add_argument("dirs", nargs="+", help="folders of images")
    i.add_argument("--db", required=True, help="catalogue file (vectors are saved beside it)")
    i.add_argument("--model", default=None, help="installed model id, model folder or baseline "
                                                 "(colour-hist, hog, hist+hog); default: first installed")
    i.set_defaults(func=index_cmd)

    s = sub.add_parser("search", help="the most similar indexed images to an image")
    s.add_argument("--db", required=True)
    s.add_argument("--image", required=True, help="query image file")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--min-score", type=float, default=None, help="drop results below this cosine similarity")
    s.add_argument("--model", default=None, help="default: the model the catalogue was indexed with")
    s.add_argument("--json", action="store_true", help="print only JSON")
    s.set_defaults(func=search_cmd)

    e = sub.add_parser("eval", help="retrieval / re-ID metrics on a labelled folder")
    e.add_argument("dir")
    e.add_argument("--layout", choices=LAYOUTS, default=None, help="default: detected")
    e.add_argument("--cub-split", choices=("test", "disjoint", "all"), default="test")
    e.add_argument("--model", default=None)
    e.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1 20, k2 6, lambda 0.3)")
    e.add_argument("--json", action="store_true", help="print only JSON")
    e.set_defaults(func=eval_cmd)


def _host():
    from app.core.host import HeadlessHost

    return HeadlessHost()


def index_cmd(args: argparse.Namespace) -> int:
    from .engine import index_folders, resolve_embedder

    for d in args.dirs:
        if not Path(d).is_dir():
            raise BadInput(f"{d}: no such folder")
    embedder = resolve_embedder(_host(), args.model)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.5 or done == total:
            last[0] = now
            print(f"\r{stage}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    rep = index_folders(args.dirs, args.db, embedder, progress=progress)
    for path, reason in rep.unreadable:
        print(f"{path}: {reason}", file=sys.stderr)
    print(rep.summary())
    return 0


def search_cmd(args: argparse.Namespace) -> int:
    from app.core.collection import Collection

    from .engine import read_rgb, resolve_embedder, search

    db = Path(args.db)
    if not db.is_file():
        raise BadInput(f"{db}: no such catalogue (run `vitascope retrieval index` first)")
    if args.k <= 0:
        raise BadInput(f"--k must be positive, got {args.k}")
    model = args.model
    if model is None:
        with Collection(db, readonly=True) as col:
            model = col.get_meta("model_id") or None
    embedder = resolve_embedder(_host(), model)
    hits = search(db, read_rgb(args.image), embedder, k=args.k, min_score=args.min_score)
    if args.json:
        print(json.dumps({"model": embedder.model_id,
                          "results": [{"file": h.file, "score": round(h.score, 6)} for h in hits]}))
    else:
        for h in hits:
            print(f"{h.score:.4f}  {h.file}")
    return 0


def eval_cmd(args: argparse.Namespace) -> int:
    from .engine import evaluate, resolve_embedder
    from .layouts import read_layout

    es = read_layout(args.dir, args.layout, cub_split=args.cub_split)
    embedder = resolve_embedder(_host(), args.model)
    m = evaluate(es, embedder, rerank=args.rerank)
    out = {"model": embedder.model_id, "layout": es.layout, **m.to_json(), "rerank": bool(args.rerank)}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{embedder.model_id} on {args.dir} ({es.layout}, {m.queries} queries, {m.gallery} gallery"
              f"{', re-ranked' if args.rerank else ''}): mAP {m.map:.4f}  mINP {m.minp:.4f}  "
              + "  ".join(f"R{k} {v:.4f}" for k, v in m.cmc.items())
              + "  |  " + "  ".join(f"Recall@{k} {v:.4f}" for k, v in m.recall.items()))
    return 0
