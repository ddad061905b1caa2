"""The DCAL embedder's defining identities: GLCA over all tokens with SA's weights is SA; PWCA paired with the
image itself is SA; rollout rows sum to 1; PWCA changes nothing at inference; ONNX export matches torch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from app.train.dcal import DcalConfig, DcalViT, Embedder, attention_rollout, batch_hard_triplet, dcal_loss  # noqa: E402


def _model(**kw):
    torch.manual_seed(0)
    return DcalViT(DcalConfig(img_size=32, patch=8, width=32, depth=2, heads=2, num_ids=5, **kw)).eval()


def test_glca_with_every_token_and_sa_weights_is_sa():
    m = _model(top_r=1.0)
    m.glca.load_state_dict(m.blocks[-1].state_dict())
    x = torch.randn(3, 17, 32)
    idx = torch.stack([torch.randperm(16) + 1 for _ in range(3)])
    idx = torch.cat([torch.zeros(3, 1, dtype=torch.long), idx], dim=1)
    with torch.no_grad():
        g, _ = m.glca(x, query_idx=idx)
        s, _ = m.blocks[-1](x)
    assert torch.allclose(g, torch.gather(s, 1, idx[:, :, None].expand(-1, -1, 32)), atol=1e-5)


def test_pwca_paired_with_itself_is_sa():
    m = _model()
    x = torch.randn(2, 17, 32)
    with torch.no_grad():
        a, _ = m.blocks[0](x)
        b, _ = m.blocks[0](x, pair=x)
        c, attn = m.blocks[0](x, pair=torch.randn(2, 17, 32))
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)
    assert attn.shape == (2, 2, 17, 34)  # one softmax over both images' keys


def test_rollout_rows_sum_to_one():
    m = _model()
    with torch.no_grad():
        _, _, attns = m.sa(torch.randn(2, 3, 32, 32))
    r = attention_rollout(attns)
    assert torch.allclose(r.sum(-1), torch.ones(2, 17), atol=1e-5)


def test_pwca_is_training_only_and_twin_is_smaller():
    m = _model(pwca=True)
    m2 = _model(pwca=False)
    m2.load_state_dict(m.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m.embed(x), m2.embed(x))
        e = m.embed(x)
    assert e.shape == (2, 64) and torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    twin = _model(glca=False, pwca=False)
    assert twin.embed(x).shape == (2, 32)
    assert sum(p.numel() for p in twin.parameters()) < sum(p.numel() for p in m.parameters())


def test_losses_and_gradients_reach_every_branch():
    m = _model().train()
    x = torch.randn(8, 3, 32, 32)
    y = torch.arange(4).repeat_interleave(2)
    out = m.forward_train(x, torch.randperm(8))
    loss, parts = dcal_loss(m, out, y)
    assert set(parts) == {"loss_sa", "loss_glca", "loss_pwca"}
    loss.backward()
    assert m.glca.attn.qkv.weight.grad.abs().sum() > 0 and m.loss_w.grad.abs().sum() > 0
    f = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert batch_hard_triplet(torch.cat([f, f]), torch.arange(4).repeat(2), margin=0.3) < 0.3 + 1e-6


def test_onnx_export_matches_torch(tmp_path):
    pytest.importorskip("onnx")
    from app.core.zoo import open_folder
    from app.train.dcal_train import export

    m = _model(stem="conv")
    card = export(m, tmp_path / "m", {"id": "t-dcal", "provenance": {"note": "test"}})
    assert card.task == "retrieval.embed" and card.outputs[0].shape == ("batch", 64)
    handle = open_folder(tmp_path / "m")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)
    got = handle.run(x)[0]
    with torch.no_grad():
        ref = Embedder(m)(torch.from_numpy(x)).numpy()
    assert np.abs(got - ref).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_pk_batches_give_real_classes_their_share():
    from app.train.dcal_train import pk_batch

    y = np.repeat(np.arange(60), 4)  # ids 0-49 synthetic, 50-59 real
    by_id = [np.flatnonzero(y == i) for i in range(60)]
    pools = (np.arange(50), np.arange(50, 60))
    rng = np.random.default_rng(0)
    for share, want in ((0.5, 8), (0.25, 4)):
        idx = pk_batch(by_id, 16, 4, rng, pools, share)
        ids = y[idx]
        assert len(idx) == 64 and len(set(ids.tolist())) == 16
        assert int((ids >= 50).sum()) == want * 4
    uniform = np.concatenate([y[pk_batch(by_id, 16, 4, rng)] for _ in range(200)])
    assert 0.10 < float((uniform >= 50).mean()) < 0.24  # about 10 of 60 ids without a share
