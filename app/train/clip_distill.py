"""TinyCLIP-style compression of a CLIP model: manual weight inheritance (every k-th layer, the first channels /
heads / MLP neurons) and affinity mimicking (KL between teacher and student image→text and text→image affinity
distributions at a fixed logit scale), plus the contrastive loss and a feature-distillation baseline."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from .clip_model import CLIP, ClipConfig


def kept_layers(teacher_depth: int, student_depth: int) -> list[int]:
    """Layers 0, step, 2·step, … with step = teacher_depth // student_depth (12→6 keeps the even layers)."""
    if not 0 < student_depth <= teacher_depth:
        raise ValueError(f"student depth {student_depth} must be in 1..{teacher_depth}")
    step = teacher_depth // student_depth
    return [i * step for i in range(student_depth)]


def _block(dst: dict, src: dict, prefix_d: str, prefix_s: str, w: int, heads: int, head_dim: int, mlp: int) -> None:
    """Copy one residual block keeping the first w channels, the first `heads` heads and first `mlp` neurons."""
    s = {k[len(prefix_s):]: v for k, v in src.items() if k.startswith(prefix_s)}
    d_in = s["attn.in_proj_weight"].shape[1]
    qkv_w = s["attn.in_proj_weight"].reshape(3, -1, head_dim, d_in)[:, :heads, :, :w]
    qkv_b = s["attn.in_proj_bias"].reshape(3, -1, head_dim)[:, :heads]
    dst[prefix_d + "attn.in_proj_weight"] = qkv_w.reshape(3 * heads * head_dim, w)
    dst[prefix_d + "attn.in_proj_bias"] = qkv_b.reshape(-1)
    dst[prefix_d + "attn.out_proj.weight"] = s["attn.out_proj.weight"][:w, :heads * head_dim]
    dst[prefix_d + "attn.out_proj.bias"] = s["attn.out_proj.bias"][:w]
    for ln in ("ln_1", "ln_2"):
        dst[prefix_d + f"{ln}.weight"] = s[f"{ln}.weight"][:w]
        dst[prefix_d + f"{ln}.bias"] = s[f"{ln}.bias"][:w]
    dst[prefix_d + "mlp.c_fc.weight"] = s["mlp.c_fc.weight"][:mlp, :w]
    dst[prefix_d + "mlp.c_fc.bias"] = s["mlp.c_fc.bias"][:mlp]
    dst[prefix_d + "mlp.c_proj.weight"] = s["mlp.c_proj.weight"][:w, :mlp]
    dst[prefix_d + "mlp.c_proj.bias"] = s["mlp.c_proj.bias"][:w]


def inherit(teacher: CLIP, student_cfg: ClipConfig) -> CLIP:
    """A student whose every weight is a slice of the teacher's (manual inheritance). Head width must match."""
    t = teacher.cfg
    hd_v, hd_t = t.vision_width // t.vision_heads, t.text_width // t.text_heads
    if student_cfg.vision_width // student_cfg.vision_heads != hd_v or \
            student_cfg.text_width // student_cfg.text_heads != hd_t:
        raise ValueError("the student must keep the teacher's head width")
    for key in ("embed_dim", "image_size", "patch_size", "vocab_size"):
        if getattr(student_cfg, key) != getattr(t, key):
            raise ValueError(f"the student must keep the teacher's {key}")
    if student_cfg.context_length > t.context_length:
        raise ValueError("the student's context cannot be longer than the teacher's")
    student = CLIP(replace(student_cfg, act=t.act))
    src = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
    dst: dict[str, torch.Tensor] = {}
    vw, tw = student_cfg.vision_width, student_cfg.text_width
    dst["visual.conv1.weight"] = src["visual.conv1.weight"][:vw]
    dst["visual.class_embedding"] = src["visual.class_embedding"][:vw]
    dst["visual.positional_embedding"] = src["visual.positional_embedding"][:, :vw]
    for ln in ("ln_pre", "ln_post"):
        dst[f"visual.{ln}.weight"] = src[f"visual.{ln}.weight"][:vw]
        dst[f"visual.{ln}.bias"] = src[f"visual.{ln}.bias"][:vw]
    dst["visual.proj"] = src["visual.proj"][:vw]
    for j, i in enumerate(kept_layers(t.vision_layers, student_cfg.vision_layers)):
        _block(dst, src, f"visual.transformer.resblocks.{j}.", f"visual.transformer.resblocks.{i}.", vw,
               student_cfg.vision_heads, hd_v, student_cfg.vision_mlp)
    dst["token_embedding.weight"] = src["token_embedding.weight"][:, :tw]
    dst["positional_embedding"] = src["positional_embedding"][:student_cfg.context_length, :tw]
    dst["ln_final.weight"], dst["ln_final.bias"] = src["ln_final.weight"][:tw], src["ln_final.bias"][:tw]
    dst["text_projection"] = src["text_projection"][:tw]
    for j, i in enumerate(kept_layers(t.text_layers, student_cfg.text_layers)):
        _block(dst, src, f"transformer.resblocks.{j}.", f"transformer.resblocks.{i}.", tw, student_cfg.text_heads,
               hd_t, student_cfg.text_mlp)
    dst["logit_scale"] = src["logit_scale"]
    student.load_state_dict({k: v.contiguous() for k, v in dst.items()}, strict=True)
    return student


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """CLIP's symmetric InfoNCE over unit features."""
    logits = scale * img @ txt.T
    target = torch.arange(img.shape[0], device=img.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def affinity_loss(s_img: torch.Tensor, s_txt: torch.Tensor, t_img: torch.Tensor, t_txt: torch.Tensor,
                  tau: float = 50.0) -> torch.Tensor:
    """½·KL(A_I2T teacher ‖ student) + ½·KL(A_T2I teacher ‖ student), rows softmax(τ·I Tᵀ) at a fixed scale;
    the gradient is the paper's soft-target cross-entropy's, and the loss is 0 when student = teacher."""
    def kl(s_logits: torch.Tensor, t_logits: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(s_logits, dim=1), F.log_softmax(t_logits, dim=1), reduction="batchmean",
                        log_target=True)

    s = tau * s_img @ s_txt.T
    t = tau * t_img @ t_txt.T
    return 0.5 * kl(s, t) + 0.5 * kl(s.T, t.T)


def feature_loss(s_img: torch.Tensor, s_txt: torch.Tensor, t_img: torch.Tensor, t_txt: torch.Tensor) -> torch.Tensor:
    """Feature distillation baseline: squared distance between student and teacher unit embeddings."""
    return ((s_img - t_img) ** 2).sum(1).mean() + ((s_txt - t_txt) ** 2).sum(1).mean()


def train(model: CLIP, images: torch.Tensor, tokens: torch.Tensor, pairs: torch.Tensor, steps: int, batch: int,
          lr: float, mode: str = "clip", teacher_img: torch.Tensor | None = None,
          teacher_txt: torch.Tensor | None = None, seed: int = 0, warmup: int = 50, flip: torch.Tensor | None = None,
          log: Callable[[int, float], None] | None = None, time_limit: float | None = None,
          stop: Callable[[], bool] | None = None, log_every: int = 20) -> dict:
    """Train on (image index, caption index) `pairs` with batches of distinct images. mode: "clip" (contrastive),
    "affinity" (affinity mimicking on precomputed teacher features of the same images and captions) or
    "feature" (contrastive + feature distillation). AdamW, warm-up then cosine decay, gradient clip 5. `log` is
    called every `log_every` steps and at the last; training ends early when `stop()` turns true (checked before
    each step) or after `time_limit` seconds."""
    if mode not in ("clip", "affinity", "feature"):
        raise ValueError(mode)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-6)
    by_image: dict[int, list[int]] = {}
    for row, (i, _c) in enumerate(pairs.tolist()):
        by_image.setdefault(i, []).append(row)
    image_ids = torch.tensor(sorted(by_image))
    model.train()
    t0, losses = time.perf_counter(), []
    done = 0
    for step in range(steps):
        if stop is not None and stop():
            break
        frac = step / max(1, steps)
        opt.param_groups[0]["lr"] = lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * frac))
        pick = image_ids[torch.randperm(image_ids.numel(), generator=g)[:batch]]
        rows = torch.tensor([by_image[int(i)][int(torch.randint(len(by_image[int(i)]), (1,), generator=g))]
                             for i in pick])
        img_idx, cap_idx = pairs[rows, 0], pairs[rows, 1]
        x = images[img_idx].float()
        if flip is not None:
            f = flip[img_idx] & (torch.rand(x.shape[0], generator=g) < 0.5)
            x[f] = x[f].flip(-1)
        s_img = F.normalize(model.encode_image(x), dim=-1)
        s_txt = F.normalize(model.encode_text(tokens[cap_idx]), dim=-1)
        if mode == "affinity":
            loss = affinity_loss(s_img, s_txt, teacher_img[img_idx], teacher_txt[cap_idx])
        else:
            loss = contrastive_loss(s_img, s_txt, model.logit_scale.exp())
            if mode == "feature":
                loss = loss + feature_loss(s_img, s_txt, teacher_img[img_idx], teacher_txt[cap_idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100.0))
        losses.append(float(loss.detach()))
        done = step + 1
        if log is not None and (step % max(1, log_every) == 0 or step == steps - 1):
            log(step, losses[-1])
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            break
    model.eval()
    tail = losses[-20:] or [float("nan")]
    return {"steps": done, "seconds": round(time.perf_counter() - t0, 1), "final_loss": round(sum(tail) / len(tail), 4)}


@torch.no_grad()
def embed_all(model: CLIP, images: torch.Tensor, tokens: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
    """Unit image and text features of every image and caption (eval mode)."""
    model.eval()
    img = torch.cat([F.normalize(model.encode_image(images[i:i + batch].float()), dim=-1)
                     for i in range(0, images.shape[0], batch)])
    txt = torch.cat([F.normalize(model.encode_text(tokens[i:i + batch]), dim=-1)
                     for i in range(0, tokens.shape[0], batch)])
    return img, txt
