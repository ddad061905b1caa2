"""The valid inputs fuzz cases start from, built once per campaign with the app itself: a small HDF5 hologram
stack and one frame of it as PNG, a WFDB ECG record and its printout, an RGB PNG, a demo and a holography model
folder, a tiny recipe."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np

from tests.fuzz.corpus import png_image, tiny_spec, toml_dumps

REPO = Path(__file__).resolve().parents[2]


def build_fixtures(folder: Path) -> Path:
    """Write the fixtures into `folder` (created) and return it."""
    import cv2
    import h5py

    from app.cli import main

    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["holo", "simulate", "--out", str(folder / "ok.h5"), "--n", "2", "--size", "64"]) == 0
        assert main(["ecg", "simulate", "--label", "normal", "--seed", "0", "--out", str(folder / "rec")]) == 0
        assert main(["ecg", "render", str(folder / "rec.hea"), "--out", str(folder / "ecg.png")]) == 0
    with h5py.File(folder / "ok.h5", "r") as f:
        frame = np.asarray(f[next(k for k in f if f[k].ndim == 3)][0])
    cv2.imwrite(str(folder / "holo.png"), frame)
    (folder / "ok.png").write_bytes(png_image(64, 64, 90))
    model = folder / "model"
    shutil.copytree(REPO / "plugins" / "demo" / "models" / "demo-shapes-vit", model,
                    ignore=shutil.ignore_patterns("recipe.toml", "*.pt"))
    card = (model / "card.toml").read_text(encoding="utf-8")
    (model / "card.toml").write_text(card.replace('id = "demo-shapes-vit"', 'id = "demo-fuzz"', 1), encoding="utf-8")
    holo = REPO / "plugins" / "holography" / "models" / "holo-autofocus-tvit"
    shutil.copytree(holo, folder / "holo-model", ignore=shutil.ignore_patterns("*.toml", "*.pt"))
    shutil.copy2(holo / "card.toml", folder / "holo-model" / "card.toml")
    spec = tiny_spec(str(folder / "run"))
    (folder / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    (folder / "recipe.toml").write_text(toml_dumps(spec), encoding="utf-8")
    return folder
