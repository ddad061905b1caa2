"""`vitascope clip convert | index | search | eval`: bad input raises BadInput (exit 2, one line on stderr).
`search --json` prints {"model", "results": [{"file", "score"}]}; `eval --json` prints {"model", "images",
"captions", "t2i": {"1","5","10"}, "i2t": {...}} with recalls in percent; `classify --json` prints {"model", "labels",
"results": [{"file", "label", "score"}]} plus "top1", "top5" (percent) and "confusion" when sub-folders are labels."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.core.errors import BadInput


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("clip", help="text-to-image search with CLIP models (convert, index, search, eval)")
    sub = p.add_subparsers(dest="clip_cmd", required=True)

    c = sub.add_parser("convert", help="an open_clip / TinyCLIP checkpoint (.pt) → a CLIP model folder (ONNX)")
    c.add_argument("checkpoint")
    c.add_argument("--out", required=True, help="new model folder")
    c.add_argument("--id", default=None, help="model id (default: from the file name)")
    c.add_argument("--act", choices=("gelu", "quick_gelu"), default="gelu",
                   help="MLP activation: gelu (open_clip, TinyCLIP) or quick_gelu (OpenAI's original weights)")
    c.add_argument("--license", default="", help="the checkpoint's licence, recorded on the card")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=convert_cmd)

    i = sub.add_parser("index", help="index image folders (incremental) into a catalogue")
    i.add_argument("folders", nargs="+")
    i.add_argument("--db", required=True, help="catalogue file (e.g. photos.vdb)")
    i.add_argument("--model", default=None, help="installed CLIP model id or model folder (default: first)")
    i.add_argument("--batch", type=int, default=16)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=index_cmd)

    s = sub.add_parser("search", help="search an indexed catalogue by text, image or a combined query")
    s.add_argument("--db", required=True)
    q = s.add_mutually_exclusive_group(required=True)
    q.add_argument("--text", help="a text query ('2:red car' weights it)")
    q.add_argument("--image", help="an image file as the query")
    q.add_argument("--query", nargs="+", metavar="TERM",
                   help="combined query as rclip writes it: \"2:red car\" + photo.jpg - night")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--threshold", type=float, default=None, help="drop results scoring below this cosine")
    s.add_argument("--model", default=None, help="model id or folder (default: the one the catalogue was "
                                                 "indexed with)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=search_cmd)

    e = sub.add_parser("eval", help="caption retrieval recall (t2i / i2t R@1/5/10, percent)")
    e.add_argument("--captions", required=True, help="JSON list of {\"image\", \"caption\"} rows")
    e.add_argument("--images", required=True, help="folder holding the images the rows name")
    e.add_argument("--model", default=None)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=eval_cmd)

    z = sub.add_parser("classify", help="zero-shot: sort a folder's images into typed labels (80 prompt templates)")
    z.add_argument("folder")
    z.add_argument("--labels", default=None, help="comma-separated labels (default: the sub-folder names, and then "
                                                   "accuracy and a confusion matrix are reported)")
    z.add_argument("--model", default=None)
    z.add_argument("--json", action="store_true")
    z.set_defaults(func=classify_cmd)


def convert_cmd(args: argparse.Namespace) -> int:
    from app.train.clip_convert import convert

    card = convert(args.checkpoint, args.out, model_id=args.id, act=args.act, license=args.license)
    if args.json:
        print(json.dumps(card))
    else:
        m = {r["name"]: r["value"] for r in card.get("metrics", [])}
        lat = card.get("latency", {})
        print(f"{card['id']}: {args.out} ({card['provenance']['layout']} layout, {card['arch']['params']:,} params); "
              f"torch vs onnxruntime max |Δ| image {m['parity_image_max_abs']:.1e}, text "
              f"{m['parity_text_max_abs']:.1e}; image encoder {lat.get('image_ms', float('nan')):.1f} ms "
              "(batch 1, 2 threads)")
    return 0


def _load_model(spec: str | None):
    from .model import ClipModel, find_model

    return ClipModel(find_model(spec))


def index_cmd(args: argparse.Namespace) -> int:
    from .index import index_folders

    if args.batch <= 0:
        raise BadInput(f"--batch must be positive, got {args.batch}")
    for f in args.folders:
        if not Path(f).is_dir():
            raise BadInput(f"{f}: no such folder")
    model = _load_model(args.model)
    rep = index_folders(args.db, args.folders, model, batch=args.batch)
    for f, reason in rep.unreadable:
        sys.stderr.write(f"vitascope: {f}: skipped ({reason})\n")
    if args.json:
        print(json.dumps(rep.to_dict()))
    else:
        print(f"{args.db}: {rep.files} images indexed with {rep.model} ({rep.scan}; {rep.embedded} embedded at "
              f"{rep.images_per_s:.1f} images/s, {rep.removed} removed)")
    return 0


def search_cmd(args: argparse.Namespace) -> int:
    from .index import SearchIndex, db_model
    from .query import parse_query, parse_term, query_vector

    if args.k <= 0:
        raise BadInput(f"--k must be positive, got {args.k}")
    if args.threshold is not None and not -1.0 <= args.threshold <= 1.0:
        raise BadInput(f"--threshold is a cosine score in [-1, 1], got {args.threshold}")
    if not Path(args.db).is_file():
        raise BadInput(f"{args.db}: no such catalogue (run `vitascope clip index` first)")
    if args.text is not None:
        terms = [parse_term(args.text, images_allowed=False)]
    elif args.image is not None:
        if not Path(args.image).is_file():
            raise BadInput(f"{args.image}: no such file")
        from .query import Term

        terms = [Term("image", args.image)]
    else:
        terms = parse_query(args.query)
    spec = args.model
    if spec is None:
        mid, folder = db_model(args.db)
        spec = folder if folder and Path(folder).is_dir() else (mid or None)
    model = _load_model(spec)
    index = SearchIndex(args.db, model.id)
    results = index.search(query_vector(model, terms), k=args.k, threshold=args.threshold)
    if args.json:
        print(json.dumps({"model": model.id, "results": results}))
    else:
        for r in results:
            print(f"{r['score']:.4f}\t{r['file']}")
    return 0


def eval_cmd(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    res = evaluate(_load_model(args.model), args.captions, args.images)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['model']}: {res['images']} images, {res['captions']} captions; "
              + "; ".join(f"{d} R@1/5/10 " + "/".join(f"{res[d][k]:.1f}" for k in ("1", "5", "10"))
                          for d in ("t2i", "i2t")) + " (%)")
    return 0


def classify_cmd(args: argparse.Namespace) -> int:
    from app.core.collection import iter_image_files

    from .zeroshot import class_vectors, classify, confusion

    root = Path(args.folder)
    if not root.is_dir():
        raise BadInput(f"{root}: no such folder")
    truth: list[int] | None = None
    if args.labels:
        labels = [x.strip() for x in args.labels.split(",") if x.strip()]
        files = list(iter_image_files(root))
    else:
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(subs) < 2:
            raise BadInput(f"{root}: give --labels, or one sub-folder per label (found {len(subs)})")
        labels = [p.name.replace("_", " ") for p in subs]
        pairs = [(f, i) for i, p in enumerate(subs) for f in iter_image_files(p)]
        files, truth = [f for f, _ in pairs], [i for _, i in pairs]
    if not files:
        raise BadInput(f"{root}: no images")
    model = _load_model(args.model)
    classes = class_vectors(model, labels)
    skipped: list[tuple[str, str]] = []
    keep, emb = model.encode_files(files, on_error=lambda f, e: skipped.append((f, e)))
    for f, e in skipped:
        sys.stderr.write(f"vitascope: {f}: skipped ({e})\n")
    if not keep:
        raise BadInput(f"{root}: none of the images could be read")
    pred, prob = classify(emb, classes)
    res: dict = {"model": model.id, "labels": labels,
                 "results": [{"file": str(files[i]), "label": labels[int(c)], "score": round(float(prob[j, c]), 4)}
                             for j, (i, c) in enumerate(zip(keep, pred, strict=True))]}
    if truth is not None:
        t = [truth[i] for i in keep]
        top5 = (-prob).argsort(axis=1)[:, :5]
        res["top1"] = round(100.0 * float(sum(int(a == b) for a, b in zip(t, pred, strict=True))) / len(t), 2)
        res["top5"] = round(100.0 * float(sum(int(a in row) for a, row in zip(t, top5, strict=True))) / len(t), 2)
        res["confusion"] = confusion(t, pred, len(labels)).tolist()
    if args.json:
        print(json.dumps(res))
    else:
        for r in res["results"]:
            print(f"{r['label']}\t{r['score']:.3f}\t{r['file']}")
        if truth is not None:
            print(f"{model.id}: top-1 {res['top1']:.1f} %, top-5 {res['top5']:.1f} % over {len(keep)} images, "
                  f"{len(labels)} labels")
    return 0 if not skipped else 1
