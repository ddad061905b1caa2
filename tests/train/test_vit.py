"""The hand-written ViT family: the TViT config, shapes at several image sizes, the config registry."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from app.train.arch.vit import (  # noqa: E402
    VisionTransformer,
    ViTConfig,
    count_params,
    create_model,
    get_config,
    list_configs,
)


def test_tvit_matches_the_paper():
    cfg = get_config("tvit")
    assert (cfg.img_size, cfg.patch, cfg.depth, cfg.width, cfg.heads, cfg.hidden) == (128, 16, 12, 128, 8, 1024)
    assert cfg.pool == "cls" and cfg.num_outputs == 1 and cfg.head == "regression"
    model = create_model("tvit").eval()
    assert 3.9e6 < count_params(model) < 4.2e6  # "about 4 M params" (Cuenat et al. 2022)
    with torch.no_grad():
        out = model(torch.randn(2, 3, 128, 128))
        tokens = model.forward_features(torch.randn(2, 3, 128, 128))
    assert out.shape == (2, 1)
    assert tokens.shape == (2, 1 + 64, 128)


def test_registry():
    names = list_configs()
    assert {"tvit", "vit-micro", "vit-mini"} <= set(names)
    assert get_config("vit-micro", depth=3).depth == 3
    with pytest.raises(KeyError, match="unknown model config"):
        get_config("nope")
    with pytest.raises(ValueError, match="unknown ViT config field"):
        get_config("vit-micro", wdith=3)
    with pytest.raises(ValueError, match="divisible"):
        ViTConfig(width=30, heads=4)
    assert ViTConfig.from_dict(get_config("tvit").to_dict()) == get_config("tvit")


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_two_image_sizes(pool):
    torch.manual_seed(0)
    model = create_model("vit-micro", pool=pool).eval()
    for p in model.parameters():  # non-trivial weights (the head starts at zero)
        p.data.normal_(0, 0.05)
    with torch.no_grad():
        for h, w in [(64, 64), (96, 96), (64, 48)]:
            x = torch.randn(3, 3, h, w)
            assert model(x).shape == (3, 4)
            n_tokens = (h // 8) * (w // 8) + (1 if pool == "cls" else 0)
            assert model.forward_features(x).shape == (3, n_tokens, 64)
        x = torch.randn(2, 3, 64, 64)
        plain = model(x)
        model.dynamic_img_size = True  # always resample: identical at the native size
        assert torch.allclose(model(x), plain, atol=1e-6)
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, 64)


def test_create_from_config_and_overrides():
    cfg = get_config("vit-mini")
    m = create_model(cfg, num_outputs=7)
    assert isinstance(m, VisionTransformer) and m.head.out_features == 7
    assert create_model(cfg).config == cfg


def test_conv_stem_keeps_the_token_grid():
    model = create_model("vit-micro", stem="conv").eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 3, 64, 64)).shape == (2, 65, 64)
        assert model(torch.randn(1, 3, 96, 48)).shape == (1, 4)
    with pytest.raises(ValueError, match="power-of-two"):
        ViTConfig(patch=6, img_size=60, stem="conv")
