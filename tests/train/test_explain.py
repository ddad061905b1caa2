"""Attention rollout: the wrapper keeps the model's logits, focuses where the evidence is, and exports to ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.core import runtime
from app.core.card import sha256_file
from app.train.arch.vit import create_model
from app.train.explain import AttentionRollout, export_rollout, rollout, upsample


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_rollout_keeps_logits_and_is_a_normalised_map(pool):
    torch.manual_seed(0)
    model = create_model("vit-micro", pool=pool, in_chans=1).eval()
    x = torch.randn(3, 1, 64, 96)
    logits, rel = rollout(model, x)
    with torch.no_grad():
        want = model(x)
    assert torch.allclose(logits, want, atol=1e-5)
    assert rel.shape == (3, 8, 12)
    assert float(rel.min()) == pytest.approx(0.0, abs=1e-6) and float(rel.amax(dim=(1, 2)).min()) == pytest.approx(1.0)


def test_rollout_follows_attention_to_a_token():
    """Give one patch a distinctive position embedding and make every query look for it: the map peaks there."""
    torch.manual_seed(0)
    model = create_model("vit-micro", in_chans=1, pool="cls", depth=1).eval()
    target = 8 * 3 + 5  # patch (row 3, col 5) of the 8x8 grid
    with torch.no_grad():
        v = torch.randn(model.config.width)
        model.pos_embed.zero_()
        model.pos_embed[0, target] = 5.0 * v
        block = model.blocks[0]
        key = block.norm1(model.pos_embed[0, target][None])[0]
        c = model.config.width
        block.attn.qkv.weight.zero_()
        block.attn.qkv.weight[c:2 * c].copy_(torch.eye(c))   # k = LN(x)
        block.attn.qkv.bias.zero_()
        block.attn.qkv.bias[:c].copy_(10.0 * key)            # q: the same for every token, aligned with the key
    _, rel = rollout(model, torch.zeros(1, 1, 64, 64))
    assert int(rel[0].flatten().argmax()) == target
    assert float(rel[0].flatten().sort().values[-2]) < 0.5


def test_export_rollout_matches_torch(tmp_path):
    torch.manual_seed(1)
    model = create_model("vit-micro", in_chans=1, num_outputs=4).eval()
    table = export_rollout(model, torch.zeros(2, 1, 64, 64), tmp_path)
    assert table["sha256"] == sha256_file(tmp_path / table["file"])
    sess = runtime.create_session(tmp_path / table["file"], threads=1, warmup=False)
    x = torch.randn(2, 1, 48, 80)
    logits, rel = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want_logits, want_rel = AttentionRollout(model)(x)
    np.testing.assert_allclose(logits, want_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(rel, want_rel.numpy(), atol=1e-4)
    up = upsample(rel[0], 120, 200)
    assert up.shape == (120, 200) and 0.0 <= up.min() and up.max() <= 1.0 + 1e-6
