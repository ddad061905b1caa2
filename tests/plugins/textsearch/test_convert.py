"""`vitascope clip convert` on randomly initialised TinyCLIP-ViT-8M-16-Text-3M weights saved in the flat open_clip
layout and TinyCLIP's own (`_image_encoder.` / `_text_encoder.` / `_logit_scale.`, with and without DDP `module.`):
torch vs onnxruntime within 1e-4 on both towers; bad checkpoints exit 2 with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from app.cli import main  # noqa: E402
from app.train.clip_convert import to_open_clip_keys  # noqa: E402
from app.train.clip_model import CLIP, TINYCLIP_8M_16, ImageTower, TextTower  # noqa: E402
from plugins.textsearch import clipcard  # noqa: E402
from plugins.textsearch.model import ClipModel  # noqa: E402
from plugins.textsearch.preprocess import preprocess  # noqa: E402
from plugins.textsearch.tokenizer import load_tokenizer  # noqa: E402


def tinyclip_layout(sd: dict, ddp: bool) -> dict:
    m = ".module" if ddp else ""
    out = {}
    for k, v in sd.items():
        if k.startswith("visual."):
            out[f"_image_encoder{m}.{k}"] = v
        elif k == "logit_scale":
            out[f"_logit_scale{m}.logit_scale"] = v
        else:
            out[f"_text_encoder{m}.{k}"] = v
    return out


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(20261203)
    model = CLIP(TINYCLIP_8M_16).eval()
    with torch.no_grad():  # random non-trivial norms and biases, as a trained model has
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_pre.weight", "ln_post.weight", "ln_final.weight")):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.02)
    return model


def test_architecture_is_tinyclip_8m(reference):
    n = sum(p.numel() for p in reference.parameters())
    assert 23.3e6 < n < 23.5e6  # vision 8.28M + text 15.2M
    sd = reference.state_dict()
    assert sd["visual.conv1.weight"].shape == (256, 3, 16, 16)
    assert sd["visual.positional_embedding"].shape == (197, 256)
    assert sd["visual.transformer.resblocks.9.attn.in_proj_weight"].shape == (768, 256)
    assert "visual.transformer.resblocks.10.ln_1.weight" not in sd
    assert sd["token_embedding.weight"].shape == (49408, 256) and sd["text_projection"].shape == (256, 512)
    assert "transformer.resblocks.2.mlp.c_proj.weight" in sd and "transformer.resblocks.3.ln_1.weight" not in sd
    assert "attn_mask" not in sd and sd["logit_scale"].shape == ()


@pytest.mark.parametrize("layout", ["open_clip", "tinyclip", "tinyclip+ddp"])
def test_convert_layout_parity(layout, reference, tmp_path, capsys):
    sd = reference.state_dict()
    saved = sd if layout == "open_clip" else {"epoch": 6, "state_dict": tinyclip_layout(sd, "ddp" in layout)}
    ckpt = tmp_path / "TinyCLIP-ViT-8M-16-Text-3M-YFCC15M.pt"
    torch.save(saved, ckpt)
    out = tmp_path / "model"
    assert main(["clip", "convert", str(ckpt), "--out", str(out), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["provenance"]["layout"] == layout
    metrics = {m["name"]: m["value"] for m in card["metrics"]}
    assert metrics["parity_image_max_abs"] <= 1e-4 and metrics["parity_text_max_abs"] <= 1e-4
    assert card["task"] == "textsearch.clip" and card["requires"] == ["image_encoder", "text_encoder", "tokenizer"]
    assert card["latency"]["image_ms"] > 0 and card["latency"]["threads"] == 2
    # independently: the shipped folder's ONNX towers against the torch reference on a real photo and captions
    m = ClipModel(out)
    x = preprocess(_photo())
    texts = ["a photo of a dog.", "", "cells with two nuclei " * 20]
    with torch.no_grad():
        want_i = ImageTower(reference)(torch.from_numpy(x)).numpy()
        want_t = TextTower(reference)(torch.from_numpy(load_tokenizer()(texts))).numpy()
    assert np.abs(m.encode_images(x) - want_i).max() <= 1e-4
    assert np.abs(m.encode_texts(texts) - want_t).max() <= 1e-4
    assert m.card.arch["vision_layers"] == 10 and m.card.arch["text_layers"] == 3 and m.card.arch["vision_heads"] == 4
    assert m.card.artifact("tokenizer").sha256.startswith("924691ac")
    assert m.spec.embed_dim == 512 and m.spec.image_size == 224 and m.spec.context_length == 77


def _photo():
    from pathlib import Path

    return Path(__file__).parent / "data" / "franz-kafka.jpg"


def test_key_layouts_map_to_the_same_flat_keys(reference):
    sd = reference.state_dict()
    for layout, wrapped in (("tinyclip", tinyclip_layout(sd, False)), ("tinyclip+ddp", tinyclip_layout(sd, True)),
                            ("open_clip+ddp", {f"module.{k}": v for k, v in sd.items()})):
        flat, got = to_open_clip_keys(wrapped)
        assert got == layout and flat.keys() == sd.keys()


def _bad(tmp_path, obj, name="bad.pt"):
    p = tmp_path / name
    if isinstance(obj, bytes):
        p.write_bytes(obj)
    else:
        torch.save(obj, p)
    return p


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("case, message", [
    ("missing_file", "no such file"),
    ("garbage", "not a readable torch checkpoint"),
    ("pickle_code", "not a readable torch checkpoint"),
    ("no_tensors", "holds no"),
    ("missing_key", "text_projection"),
    ("wrong_shape", "shape"),
    ("nan", "NaN"),
    ("resnet", "ResNet"),
    ("vocab", "49408"),
    ("extra_key", "unexpected key"),
])
def test_bad_checkpoints_exit_2_with_one_line(case, message, tmp_path, capsys):
    small = CLIP(TINYCLIP_8M_16.__class__(vision_layers=1, text_layers=1, vision_width=64, vision_heads=1,
                                          vision_mlp=256, text_width=64, text_heads=1, text_mlp=256,
                                          embed_dim=32)).state_dict()
    if case == "missing_file":
        p = tmp_path / "nope.pt"
    elif case == "garbage":
        p = _bad(tmp_path, b"\x00not a checkpoint" * 10)
    elif case == "pickle_code":
        p = _bad(tmp_path, {"state_dict": _Evil()})
    elif case == "no_tensors":
        p = _bad(tmp_path, {"epoch": 3})
    elif case == "missing_key":
        p = _bad(tmp_path, {k: v for k, v in small.items() if k != "text_projection"})
    elif case == "wrong_shape":
        p = _bad(tmp_path, {**small, "ln_final.weight": torch.ones(63)})
    elif case == "nan":
        p = _bad(tmp_path, {**small, "visual.proj": torch.full_like(small["visual.proj"], float("nan"))})
    elif case == "resnet":
        p = _bad(tmp_path, {"visual.attnpool.positional_embedding": torch.zeros(50, 64),
                            **{k: v for k, v in small.items() if not k.startswith("visual.")}})
    elif case == "vocab":
        p = _bad(tmp_path, {**small, "token_embedding.weight": torch.zeros(1000, 64)})
    else:
        p = _bad(tmp_path, {**small, "visual.extra.weight": torch.zeros(3)})
    out = tmp_path / "out"
    assert main(["clip", "convert", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists()
    assert "pwned" not in capsys.readouterr().out


def test_refuses_a_non_empty_output_folder(reference, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    ckpt = tmp_path / "m.pt"
    torch.save(reference.state_dict(), ckpt)
    assert main(["clip", "convert", str(ckpt), "--out", str(tmp_path / "out")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_tampered_folder_is_refused(reference, tmp_path):
    from app.core.errors import ModelError
    from app.train.clip_convert import write_folder

    write_folder(reference, tmp_path / "m", "m", {"checkpoint": "random"}, latency_runs=0)
    onnx = tmp_path / "m" / clipcard.IMAGE_FILE
    data = bytearray(onnx.read_bytes())
    data[-10] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        ClipModel(tmp_path / "m")
