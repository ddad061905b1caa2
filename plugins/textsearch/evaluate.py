"""Image–caption retrieval recall (text→image and image→text R@1/5/10, in percent) from rows
{"image", "caption"}, the way COCO retrieval is scored: a caption's one image; an image's any caption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.core.errors import BadInput

KS = (1, 5, 10)


def read_captions(path: str | Path) -> list[dict[str, str]]:
    p = Path(path)
    try:
        rows = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadInput(f"{p}: not a JSON caption list ({e.__class__.__name__})") from None
    if not isinstance(rows, list) or not rows:
        raise BadInput(f"{p}: expected a non-empty list of {{\"image\", \"caption\"}} rows")
    for i, r in enumerate(rows):
        if not (isinstance(r, dict) and isinstance(r.get("image"), str) and isinstance(r.get("caption"), str)
                and r["image"]):
            raise BadInput(f"{p}: row {i} needs string 'image' and 'caption'")
    return rows


def recall(sim: np.ndarray, caption_image: np.ndarray) -> dict[str, dict[str, float]]:
    """sim [captions, images]; caption_image[c] = index of caption c's image."""
    n_cap, n_img = sim.shape
    target = sim[np.arange(n_cap), caption_image]
    # rank of the right image for each caption: how many images score strictly higher (ties count in its favour)
    t2i_rank = (sim > target[:, None]).sum(axis=1)
    # for each image, the best rank among its captions in that image's caption ranking
    i2t_rank = np.full(n_img, n_cap, dtype=np.int64)
    sim_t = sim.T  # [images, captions]
    for img in range(n_img):
        mine = np.flatnonzero(caption_image == img)
        if mine.size == 0:
            continue
        best = sim_t[img, mine].max()
        i2t_rank[img] = int((sim_t[img] > best).sum())
    has_caption = np.isin(np.arange(n_img), caption_image)
    return {"t2i": {str(k): round(100.0 * float((t2i_rank < k).mean()), 2) for k in KS},
            "i2t": {str(k): round(100.0 * float((i2t_rank[has_caption] < k).mean()), 2) for k in KS}}


def evaluate(model, captions: str | Path, images: str | Path, batch: int = 16) -> dict:
    rows = read_captions(captions)
    folder = Path(images)
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such folder")
    names = list(dict.fromkeys(r["image"] for r in rows))
    for n in names:
        if Path(n).is_absolute() or ".." in Path(n).parts:
            raise BadInput(f"{captions}: image {n!r} must be a name inside the images folder")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise BadInput(f"{folder / missing[0]}: no such image ({len(missing)} of {len(names)} missing)")
    keep, img = model.encode_files([folder / n for n in names], batch=batch)
    if len(keep) != len(names):
        raise BadInput(f"{folder}: {len(names) - len(keep)} images could not be read")
    index = {n: i for i, n in enumerate(names)}
    txt = np.concatenate([model.encode_texts([r["caption"] for r in rows[s:s + 256]])
                          for s in range(0, len(rows), 256)])
    res = recall(txt @ img.T, np.asarray([index[r["image"]] for r in rows]))
    return {"model": model.id, "images": len(names), "captions": len(rows), **res}
