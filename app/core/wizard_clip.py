"""The wizard's "compress a CLIP model" task, torch-free: its inputs (teacher checkpoint, captioned images, student
size, steps), their checks and the student size presets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput

KS = (1, 5, 10)
HEADLINE = "t2i_R@10"
# name → (what it keeps, width factor, layer factor), for both towers; heads follow the width (head width kept)
PRESETS: dict[str, tuple[str, float, float]] = {
    "half": ("half the width and half the layers of each tower", 0.5, 0.5),
    "half-width": ("half the width, every layer", 0.5, 1.0),
    "half-layers": ("half the layers, the full width", 1.0, 0.5),
}


def _tower(cfg: dict[str, Any], tower: str, width_f: float, layer_f: float) -> dict[str, int]:
    w, heads, layers, mlp = (int(cfg[f"{tower}_{k}"]) for k in ("width", "heads", "layers", "mlp"))
    head = w // heads
    new_heads = int(heads * width_f)
    if new_heads < 1 or new_heads * head != round(w * width_f):
        raise BadInput(f"the teacher's {tower} tower has {heads} head(s) of width {head}: its width {w} cannot be "
                       f"cut to {w * width_f:g} keeping the head width; choose a preset that keeps the width")
    return {f"{tower}_width": new_heads * head, f"{tower}_heads": new_heads,
            f"{tower}_layers": max(1, int(layers * layer_f)), f"{tower}_mlp": max(1, round(mlp * width_f))}


def student_config(teacher: dict[str, Any], preset: str) -> dict[str, Any]:
    """The student's ClipConfig fields for a teacher's (ClipConfig.to_dict()) and a preset; BadInput when the
    preset cannot shrink this teacher."""
    if preset not in PRESETS:
        raise BadInput(f"student size {preset!r} is not one of {', '.join(PRESETS)}")
    _, width_f, layer_f = PRESETS[preset]
    out = dict(teacher)
    for tower in ("vision", "text"):
        out.update(_tower(teacher, tower, width_f, layer_f))
    if all(out[k] == teacher[k] for k in out):
        raise BadInput(f"student size {preset!r} leaves this teacher as it is (one layer per tower); choose "
                       "another")
    return out


def read_captions(captions: str | Path, images: str | Path) -> tuple[list[dict[str, str]], list[str]]:
    """The rows {"image", "caption"} of a captions JSON and the distinct image names, each an existing file in
    `images`; BadInput (one line naming the file) otherwise."""
    p, folder = Path(captions).expanduser(), Path(images).expanduser()
    try:
        rows = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{p}: no such captions file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BadInput(f"{p}: not a JSON list of {{\"image\", \"caption\"}} rows ({e.__class__.__name__})") from None
    if not isinstance(rows, list) or not rows:
        raise BadInput(f"{p}: expected a non-empty JSON list of {{\"image\", \"caption\"}} rows")
    for i, r in enumerate(rows):
        if not (isinstance(r, dict) and isinstance(r.get("image"), str) and r["image"]
                and isinstance(r.get("caption"), str)):
            raise BadInput(f"{p}: row {i} needs a string 'image' and a string 'caption'")
        if Path(r["image"]).is_absolute() or ".." in Path(r["image"]).parts:
            raise BadInput(f"{p}: row {i}: image {r['image']!r} must be a file name inside the images folder")
    if not folder.is_dir():
        raise BadInput(f"{folder}: no such images folder")
    names = list(dict.fromkeys(r["image"] for r in rows))
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise BadInput(f"{folder / missing[0]}: no such image ({len(missing)} of the {len(names)} images in "
                       f"{p.name} are missing)")
    return rows, names


@dataclass
class ClipChoice:
    """What the user picks for a CLIP compression run (paths as typed; "" = not given)."""

    teacher: str = ""  # an open_clip / TinyCLIP checkpoint file
    captions: str = ""  # training captions JSON
    images: str = ""  # the folder its image names are in
    val_captions: str = ""  # optional: validation captions JSON ("" = hold out a tenth of the training images)
    val_images: str = ""  # optional: its images folder ("" = the training images folder)
    preset: str = "half"
    act: str = "gelu"  # the teacher's MLP activation: gelu (open_clip, TinyCLIP) | quick_gelu (OpenAI's weights)
    steps: int = 300
    batch_size: int = 32
    lr: float = 5e-4
    threads: int = 2

    def problems(self) -> list[str]:
        """Cheap checks (no file is read), one line each."""
        out = []
        if not self.teacher:
            out.append("choose the teacher checkpoint (.pt)")
        elif not Path(self.teacher).expanduser().is_file():
            out.append(f"{self.teacher}: no such checkpoint file")
        if not self.captions:
            out.append("choose the training captions JSON")
        elif not Path(self.captions).expanduser().is_file():
            out.append(f"{self.captions}: no such captions file")
        if not self.images:
            out.append("choose the training images folder")
        elif not Path(self.images).expanduser().is_dir():
            out.append(f"{self.images}: no such images folder")
        if self.val_captions and not Path(self.val_captions).expanduser().is_file():
            out.append(f"{self.val_captions}: no such validation captions file")
        if self.val_images and not Path(self.val_images).expanduser().is_dir():
            out.append(f"{self.val_images}: no such validation images folder")
        if self.preset not in PRESETS:
            out.append(f"student size must be one of {', '.join(PRESETS)}")
        if self.act not in ("gelu", "quick_gelu"):
            out.append("activation must be gelu or quick_gelu")
        if self.steps < 1 or self.batch_size < 2 or self.lr <= 0 or self.threads < 1:
            out.append("steps and threads must be positive, the batch at least 2 and the learning rate above 0")
        return out

    def job_params(self, model_id: str) -> dict[str, Any]:
        """The params of the job (app.train.clip_compress_job), paths made absolute."""
        def full(path: str) -> str:
            return str(Path(path).expanduser().resolve()) if path else ""

        p: dict[str, Any] = {"teacher": full(self.teacher), "captions": full(self.captions),
                             "images": full(self.images), "preset": self.preset, "act": self.act,
                             "steps": int(self.steps), "batch_size": int(self.batch_size), "lr": float(self.lr),
                             "threads": int(self.threads), "model_id": model_id}
        if self.val_captions:
            p["val_captions"] = full(self.val_captions)
            p["val_images"] = full(self.val_images or self.images)
        return p
