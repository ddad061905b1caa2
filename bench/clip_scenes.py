"""Generated captioned images for CLIP training: compositional scenes of shapes with colours, counts, positions
and background textures, each with a detailed and a short caption (numpy + PIL, seeded)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (235, 215, 40),
           "purple": (140, 60, 190), "orange": (245, 140, 30), "white": (245, 245, 245), "black": (15, 15, 15),
           "pink": (245, 150, 190), "brown": (120, 75, 35)}
SHAPES = ("circle", "square", "triangle", "ring", "cross")
BACKGROUNDS = {"grey": (128, 128, 128), "light blue": (170, 200, 235), "dark": (45, 45, 55), "beige": (225, 210, 180),
               "grass": (90, 140, 70)}
TEXTURES = ("plain", "striped", "dotted")
COUNT = {1: "one", 2: "two", 3: "three"}
POS = {"left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75), "centre": (0.5, 0.5)}


def _shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, rgb: tuple) -> None:
    box = (cx - r, cy - r, cx + r, cy + r)
    if kind == "circle":
        draw.ellipse(box, fill=rgb)
    elif kind == "square":
        draw.rectangle(box, fill=rgb)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=rgb)
    elif kind == "ring":
        draw.ellipse(box, outline=rgb, width=max(2, int(r / 3)))
    else:
        w = max(2, int(r / 2.5))
        draw.rectangle((cx - r, cy - w / 2, cx + r, cy + w / 2), fill=rgb)
        draw.rectangle((cx - w / 2, cy - r, cx + w / 2, cy + r), fill=rgb)


def _plural(shape: str, n: int) -> str:
    return shape if n == 1 else ("crosses" if shape == "cross" else shape + "s")


def scene(rng: np.random.Generator, size: int = 64) -> tuple[np.ndarray, list[str]]:
    bg_name = rng.choice(list(BACKGROUNDS))
    texture = rng.choice(TEXTURES, p=[0.6, 0.2, 0.2])
    bg = np.array(BACKGROUNDS[bg_name], np.float32)
    img = np.tile(bg, (size, size, 1))
    if texture == "striped":
        img[:, (np.arange(size) // 4) % 2 == 0] *= 0.7
    elif texture == "dotted":
        yy, xx = np.mgrid[:size, :size]
        img[((yy % 8) < 2) & ((xx % 8) < 2)] *= 0.55
    im = Image.fromarray(np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    colours = [c for c in COLOURS if np.abs(np.array(COLOURS[c]) - bg).sum() > 90]
    groups = 1 if rng.random() < 0.55 else 2
    positions = list(rng.permutation(list(POS)))
    parts, short = [], []
    for gi in range(groups):
        colour, shape = rng.choice(colours), rng.choice(SHAPES)
        n = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
        pos = positions[gi] if (groups == 2 or rng.random() < 0.6) else "centre"
        cx, cy = POS[pos]
        r = size * (0.16 if n == 1 else 0.1) * rng.uniform(0.8, 1.2)
        for k in range(n):
            off = (k - (n - 1) / 2) * 2.3 * r
            dx, dy = (0, off) if pos in ("left", "right") else (off, 0)
            jitter = rng.normal(0, size * 0.02, 2)
            _shape(draw, shape, cx * size + dx + jitter[0], cy * size + dy + jitter[1], r, COLOURS[colour])
        art = ("an" if colour[0] in "aeiou" else "a") if n == 1 else COUNT[n]
        what = f"{art} {colour} {_plural(shape, n)}"
        where = "" if pos == "centre" and groups == 1 else (" in the centre" if pos == "centre" else
                                                             f" on the {pos}" if pos in ("left", "right")
                                                             else f" at the {pos}")
        parts.append(what + where)
        short.append(f"{colour} {_plural(shape, n)}")
    back = f" on a {bg_name} background" if texture == "plain" else f" on a {texture} {bg_name} background"
    detailed = " and ".join(parts) + back
    brief = " and ".join(short)
    return np.asarray(im), [detailed, brief]


def make_scenes(n: int, seed: int = 0, size: int = 64) -> tuple[np.ndarray, list[list[str]]]:
    rng = np.random.default_rng(seed)
    images, captions = [], []
    for _ in range(n):
        img, caps = scene(rng, size)
        images.append(img)
        captions.append(caps)
    return np.stack(images), captions


if __name__ == "__main__":
    imgs, caps = make_scenes(8, seed=1)
    for c in caps:
        print(c)
    Image.fromarray(np.concatenate(list(imgs), axis=1)).save("/tmp/clip_scenes.png")
