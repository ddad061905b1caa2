"""TinyCLIP pieces: manual weight inheritance (layers 0, k, 2k…; first channels/heads/neurons, bit-for-bit), the
affinity-mimicking loss (zero when student = teacher, symmetric in its two halves) and a short training run."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from app.train.clip_distill import affinity_loss, contrastive_loss, inherit, kept_layers, train  # noqa: E402
from app.train.clip_model import CLIP, ClipConfig  # noqa: E402

T = ClipConfig(embed_dim=16, image_size=32, patch_size=8, vision_width=32, vision_layers=4, vision_heads=4,
               vision_mlp=64, context_length=12, text_width=32, text_heads=4, text_layers=4, text_mlp=64)
S = ClipConfig(embed_dim=16, image_size=32, patch_size=8, vision_width=16, vision_layers=4, vision_heads=2,
               vision_mlp=32, context_length=12, text_width=32, text_heads=4, text_layers=2, text_mlp=64)


def _tokens(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(1, 49406, (n, 12), generator=g)
    t[:, 0] = 49406
    t[torch.arange(n), torch.randint(2, 12, (n,), generator=g)] = 49407
    return t


def test_kept_layers():
    assert kept_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert kept_layers(12, 9) == list(range(9))
    assert kept_layers(4, 1) == [0]
    with pytest.raises(ValueError):
        kept_layers(3, 4)


def test_full_inheritance_reproduces_the_teacher():
    torch.manual_seed(0)
    teacher = CLIP(T).eval()
    student = inherit(teacher, T).eval()
    x, t = torch.randn(3, 3, 32, 32), _tokens(3)
    with torch.no_grad():
        assert torch.equal(student.encode_image(x), teacher.encode_image(x))
        assert torch.equal(student.encode_text(t), teacher.encode_text(t))


def test_inheritance_slices_layers_heads_and_channels():
    torch.manual_seed(0)
    teacher = CLIP(T)
    student = inherit(teacher, S)
    ts, ss = teacher.state_dict(), student.state_dict()
    # text depth 4 → 2 keeps layers 0 and 2 bit-for-bit (width kept)
    for j, i in ((0, 0), (1, 2)):
        for k in ("attn.in_proj_weight", "mlp.c_fc.weight", "ln_2.bias"):
            assert torch.equal(ss[f"transformer.resblocks.{j}.{k}"], ts[f"transformer.resblocks.{i}.{k}"])
    # vision width 32 → 16: first channels; heads 4 → 2 of width 8: q, k, v of the first two heads, first inputs
    assert torch.equal(ss["visual.conv1.weight"], ts["visual.conv1.weight"][:16])
    qkv = ts["visual.transformer.resblocks.3.attn.in_proj_weight"].reshape(3, 4, 8, 32)
    assert torch.equal(ss["visual.transformer.resblocks.3.attn.in_proj_weight"],
                       qkv[:, :2, :, :16].reshape(48, 16))
    assert torch.equal(ss["visual.proj"], ts["visual.proj"][:16])
    assert torch.equal(ss["visual.transformer.resblocks.1.mlp.c_proj.weight"],
                       ts["visual.transformer.resblocks.1.mlp.c_proj.weight"][:16, :32])
    with pytest.raises(ValueError, match="head width"):
        inherit(teacher, ClipConfig(**{**S.to_dict(), "vision_heads": 4}))


def test_affinity_loss_zero_at_equality_and_symmetric():
    g = torch.Generator().manual_seed(0)
    a, b, c, d = (torch.nn.functional.normalize(torch.randn(8, 16, generator=g), dim=-1) for _ in range(4))
    assert float(affinity_loss(a, b, a, b)) == pytest.approx(0.0, abs=1e-6)
    assert float(affinity_loss(c, d, a, b)) > 0.01
    # swapping the image and text roles swaps the I2T and T2I halves: same value
    assert float(affinity_loss(c, d, a, b)) == pytest.approx(float(affinity_loss(d, c, b, a)), rel=1e-5)


def test_short_runs_lower_their_losses():
    torch.manual_seed(0)
    n = 24
    images = torch.randn(n, 3, 32, 32).half()
    tokens = _tokens(n, 1)
    pairs = torch.stack([torch.arange(n), torch.arange(n)], 1)
    teacher = CLIP(T)
    with torch.no_grad():
        first = float(contrastive_loss(*(torch.nn.functional.normalize(f, dim=-1) for f in (
            teacher.encode_image(images.float()), teacher.encode_text(tokens))), teacher.logit_scale.exp()))
    run = train(teacher, images, tokens, pairs, steps=40, batch=n, lr=2e-3, warmup=5)
    assert run["steps"] == 40 and run["final_loss"] < 0.5 * first
    with torch.no_grad():
        t_img = torch.nn.functional.normalize(teacher.encode_image(images.float()), dim=-1)
        t_txt = torch.nn.functional.normalize(teacher.encode_text(tokens), dim=-1)
    student = CLIP(S)
    with torch.no_grad():
        s0 = float(affinity_loss(torch.nn.functional.normalize(student.encode_image(images.float()), dim=-1),
                                 torch.nn.functional.normalize(student.encode_text(tokens), dim=-1), t_img, t_txt))
    run = train(student, images, tokens, pairs, steps=40, batch=n, lr=2e-3, mode="affinity", teacher_img=t_img,
                teacher_txt=t_txt, warmup=5)
    assert run["final_loss"] < 0.5 * s0
