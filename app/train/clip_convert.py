"""Convert an open_clip or TinyCLIP checkpoint (flat open_clip keys, TinyCLIP's `_image_encoder.` / `_text_encoder.` /
`_logit_scale.` wrappers, DDP `module.` anywhere) into a CLIP model folder: two ONNX encoders, the tokenizer
vocabulary and a zoo card (task textsearch.clip), with a torch-vs-onnxruntime parity check on both towers."""

from __future__ import annotations

import hashlib
import math
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.card import parse_card, write_card
from app.core.errors import BadInput, JobError

from .clip_model import CLIP, ClipConfig, ImageTower, TextTower, config_from_state_dict
from .export import quiet_exporter

PARITY_ATOL = 1e-4
IGNORED = ("attn_mask", "input_resolution", "context_length", "vocab_size", "l0_module.")
REQUIRED = ("visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.proj",
            "token_embedding.weight", "positional_embedding", "text_projection", "ln_final.weight",
            "visual.transformer.resblocks.0.mlp.c_fc.weight", "transformer.resblocks.0.mlp.c_fc.weight")
PROBE_TEXTS = ["a photo of a dog.", "", "cells with two nuclei", "a red car at night " * 30]


def _unwrap(obj: Any, where: str) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise BadInput(f"{where}: holds no state dict")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str):
            raise BadInput(f"{where}: state dict keys must be strings")
        if isinstance(v, torch.Tensor):
            out[k] = v
    if not out:
        raise BadInput(f"{where}: holds no tensors")
    return out


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """torch.load with weights_only (no code runs); OpenAI's TorchScript archives through torch.jit.load."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such file")
    try:
        is_zip = zipfile.is_zipfile(p)
        names = zipfile.ZipFile(p).namelist() if is_zip else []
    except (OSError, zipfile.BadZipFile):
        names = []
    try:
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            obj = torch.jit.load(str(p), map_location="cpu").state_dict()
        else:
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:
        first = (str(e).strip().splitlines() or [e.__class__.__name__])[0][:160]
        raise BadInput(f"{p}: not a readable torch checkpoint ({first})") from None
    return _unwrap(obj, str(p))


def to_open_clip_keys(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Flat open_clip keys and the layout they came in: 'open_clip', 'open_clip+ddp', 'tinyclip', 'tinyclip+ddp'."""
    ddp = any(k.startswith("module.") or ".module." in k for k in sd)
    wrappers = ("_image_encoder", "_text_encoder", "_logit_scale")
    tiny = any([p for p in k.split(".") if p != "module"][:1] in ([w] for w in wrappers) for k in sd)
    out: dict[str, torch.Tensor] = {}
    for key, v in sd.items():
        parts = [p for p in key.split(".") if p != "module"]
        if parts and parts[0] in ("_image_encoder", "_text_encoder", "_logit_scale"):
            parts = parts[1:]
        k = ".".join(parts)
        if any(k.startswith(ig) or f".{ig}" in f".{k}" for ig in IGNORED):
            continue
        if k in out:
            raise BadInput(f"checkpoint: key {key!r} duplicates {k!r} after removing prefixes")
        out[k] = v
    return out, ("tinyclip" if tiny else "open_clip") + ("+ddp" if ddp else "")


def build_model(sd: dict[str, torch.Tensor], where: str, act: str = "gelu") -> CLIP:
    """A CLIP with the checkpoint's weights; BadInput naming the first missing, unexpected or mis-shaped key."""
    missing = [k for k in REQUIRED if k not in sd]
    if missing:
        hint = " (a ResNet image tower is not supported)" if "visual.attnpool.positional_embedding" in sd else ""
        raise BadInput(f"{where}: not an open_clip/TinyCLIP ViT checkpoint: no {missing[0]!r}{hint}")
    try:
        cfg = config_from_state_dict(sd, act=act)
    except (KeyError, IndexError, ValueError) as e:
        raise BadInput(f"{where}: cannot read the architecture ({e})") from None
    if cfg.vocab_size != 49408:
        raise BadInput(f"{where}: text vocabulary of {cfg.vocab_size} tokens; the CLIP BPE tokenizer has 49408")
    if cfg.vision_width % cfg.vision_heads or cfg.text_width % cfg.text_heads:
        raise BadInput(f"{where}: widths {cfg.vision_width}/{cfg.text_width} do not split into 64-wide heads")
    try:
        model = CLIP(cfg)
    except ValueError as e:
        raise BadInput(f"{where}: {e}") from None
    if "logit_scale" not in sd:
        sd = {**sd, "logit_scale": torch.tensor(math.log(100.0))}
    own = model.state_dict()
    unexpected = [k for k in sd if k not in own]
    if unexpected:
        raise BadInput(f"{where}: unexpected key {unexpected[0]!r} ({len(unexpected)} in all)")
    absent = [k for k in own if k not in sd]
    if absent:
        raise BadInput(f"{where}: missing key {absent[0]!r} ({len(absent)} in all)")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise BadInput(f"{where}: {k} has shape {list(v.shape)}, expected {list(own[k].shape)}")
        if not torch.is_floating_point(v):
            raise BadInput(f"{where}: {k} is {v.dtype}, not floating point")
        if not torch.isfinite(v).all():
            raise BadInput(f"{where}: {k} holds NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return model.eval()


def export_tower(tower: torch.nn.Module, example: torch.Tensor, path: Path, input_name: str) -> None:
    """ONNX (opset 17) with a free batch dim in one file, output "embeds" (L2-normalised). The TorchScript
    exporter takes ~2 s for TinyCLIP-8M where the dynamo exporter takes ~20–45 s; dynamo is the fallback."""
    with quiet_exporter(), torch.no_grad():
        try:
            torch.onnx.export(tower, (example,), str(path), dynamo=False, input_names=[input_name],
                              output_names=["embeds"], dynamic_axes={input_name: {0: "batch"}, "embeds": {0: "batch"}},
                              opset_version=17)
            return
        except Exception:
            path.unlink(missing_ok=True)
        batch = torch.export.Dim("batch", min=1, max=4096)
        program = torch.onnx.export(tower, (example,), dynamo=True, dynamic_shapes=({0: batch},),
                                    input_names=[input_name], output_names=["embeds"], external_data=False,
                                    verbose=False)
        if program is None:
            raise JobError("torch.onnx.export returned no program")
        program.save(str(path), external_data=False)


def parity(tower: torch.nn.Module, path: Path, input_name: str, x: torch.Tensor) -> float:
    """Max |torch − onnxruntime| of the tower's output on x."""
    from app.core.runtime import create_session

    sess = create_session(path, threads=2, warmup=False)
    with torch.no_grad():
        want = tower(x).numpy()
    got = sess.run(None, {input_name: x.numpy()})[0]
    return float(np.abs(want - got).max())


def image_latency(path: Path, size: int, runs: int = 20, text_path: Path | None = None,
                  context: int = 77) -> dict[str, Any]:
    """Median/p90 ms of the image encoder (and the text encoder, given) in onnxruntime, batch 1, 2 threads."""
    import statistics

    import onnxruntime as ort

    from app.core.runtime import create_session, time_runs

    def timed(p: Path, feed: dict[str, np.ndarray]) -> list[float]:
        return sorted(time_runs(create_session(p, threads=2, warmup=False), feed, runs, 3))

    t = timed(path, {"image": np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)})
    out = {"image_ms": round(statistics.median(t), 3), "image_p90_ms": round(t[int(0.9 * (len(t) - 1))], 3)}
    if text_path is not None:
        ids = np.zeros((1, context), np.int64)
        ids[0, :6] = [49406, 320, 1929, 539, 320, 49407]
        t = timed(text_path, {"tokens": ids})
        out.update({"text_ms": round(statistics.median(t), 3), "text_p90_ms": round(t[int(0.9 * (len(t) - 1))], 3)})
    return {**out, "batch": 1, "threads": 2, "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider"}


def write_folder(model: CLIP, out: str | Path, model_id: str, source: dict[str, Any], license: str = "",
                 description: str = "", vocab: str | Path | None = None, latency_runs: int = 20) -> dict[str, Any]:
    """Export both towers into `out` (written to a temporary folder first), check parity, write the card."""
    import plugins.textsearch.clipcard as clipcard
    from plugins.textsearch.tokenizer import VOCAB_FILE, ClipTokenizer, default_vocab

    cfg: ClipConfig = model.cfg
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"{out}: exists and is not an empty folder")
    vocab_src = Path(vocab) if vocab else default_vocab()
    tok = ClipTokenizer(vocab_src)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        image_tower, text_tower = ImageTower(model).eval(), TextTower(model).eval()
        g = torch.Generator().manual_seed(0)
        img = torch.randn(2, 3, cfg.image_size, cfg.image_size, generator=g)
        ids = torch.from_numpy(tok(PROBE_TEXTS, cfg.context_length))
        rand = torch.randint(1, 49406, (2, cfg.context_length), generator=g)
        rand[:, -1] = 49407
        txt = torch.cat([ids, rand])
        export_tower(image_tower, img, tmp / clipcard.IMAGE_FILE, "image")
        export_tower(text_tower, txt, tmp / clipcard.TEXT_FILE, "tokens")
        err_img = parity(image_tower, tmp / clipcard.IMAGE_FILE, "image", img)
        err_txt = parity(text_tower, tmp / clipcard.TEXT_FILE, "tokens", txt)
        if not (err_img <= PARITY_ATOL and err_txt <= PARITY_ATOL):
            raise JobError(f"ONNX export differs from torch: image {err_img:.2e}, text {err_txt:.2e} "
                           f"(limit {PARITY_ATOL:g})")
        shutil.copyfile(vocab_src, tmp / VOCAB_FILE)
        card = clipcard.card_dict(
            model_id, tmp, VOCAB_FILE, embed_dim=cfg.embed_dim, image_size=cfg.image_size,
            context_length=cfg.context_length,
            tokenizer={"kind": "clip-bpe", "sot": 49406, "eot": 49407, "context": cfg.context_length, "lower": True},
            description=description or f"CLIP ViT {cfg.vision_width}w/{cfg.vision_layers}L/{cfg.patch_size}px + "
                                       f"text {cfg.text_width}w/{cfg.text_layers}L, embed {cfg.embed_dim}",
            license=license,
            arch={**cfg.to_dict(), "params": int(sum(p.numel() for p in model.parameters())),
                  "logit_scale": float(model.logit_scale.detach().exp().clamp(max=100.0))},
            preprocess={"size": cfg.image_size, "resize": "shortest side, bicubic", "crop": "centre",
                        "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
            metrics={"parity_image_max_abs": err_img, "parity_text_max_abs": err_txt},
            latency=image_latency(tmp / clipcard.IMAGE_FILE, cfg.image_size, latency_runs, tmp / clipcard.TEXT_FILE,
                                  cfg.context_length) if latency_runs else {},
            provenance=source)
        parsed = parse_card(card, str(tmp / "card.toml"), tmp)
        write_card(tmp, parsed)
        card = parsed.to_dict()
        if out.exists():
            out.rmdir()
        tmp.chmod(0o755)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return card


def convert(checkpoint: str | Path, out: str | Path, model_id: str | None = None, act: str = "gelu",
            license: str = "", latency_runs: int = 20) -> dict[str, Any]:
    """Checkpoint file → model folder; returns the card as a dict (the artifacts form)."""
    path = Path(checkpoint)
    raw = load_checkpoint(path)
    sd, layout = to_open_clip_keys(raw)
    model = build_model(sd, str(path), act=act)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    mid = model_id or "".join(c if c.isalnum() or c in "._-" else "-" for c in path.stem.lower()).strip("-._")[:64]
    if not mid:
        mid = "clip-converted"
    source = {"checkpoint": path.name, "checkpoint_sha256": digest, "layout": layout, "activation": act,
              "converter": "vitascope clip convert"}
    return write_folder(model, out, mid, source, license=license or "as the source checkpoint",
                        latency_runs=latency_runs)
