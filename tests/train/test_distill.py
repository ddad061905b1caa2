"""Distillation losses: NKD vs the reference NKDLoss, one-hot teacher → CE, C-1 non-target
classes, Zipf sums to 1; USKD vs a direct re-implementation of the reference; KD and regression distillation."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from app.train.distill import RegressionDistill, USKDLoss, kd_loss, nkd_loss, nkd_terms, soft_target_ce, zipf  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")



class RefNKDLoss(nn.Module):
    """yzd-v/cls_KD mmcls/models/dis_losses/nkd.py (branch 1.0), re-typed without the mmcls registry."""

    def __init__(self, temp=1.0, gamma=1.5):
        super().__init__()
        self.temp, self.gamma = temp, gamma
        self.log_softmax = nn.LogSoftmax(dim=1)

    def forward(self, logit_s, logit_t, gt_label):
        if len(gt_label.size()) > 1:
            label = torch.max(gt_label, dim=1, keepdim=True)[1]
        else:
            label = gt_label.view(len(gt_label), 1)
        N, c = logit_s.shape
        s_i = self.log_softmax(logit_s)
        t_i = F.softmax(logit_t, dim=1)
        s_t = torch.gather(s_i, 1, label)
        t_t = torch.gather(t_i, 1, label).detach()
        loss_t = - (t_t * s_t).mean()
        mask = torch.ones_like(logit_s).scatter_(1, label, 0).bool()
        logit_s = logit_s[mask].reshape(N, -1)
        logit_t = logit_t[mask].reshape(N, -1)
        S_i = self.log_softmax(logit_s / self.temp)
        T_i = F.softmax(logit_t / self.temp, dim=1)
        loss_non = (T_i * S_i).sum(dim=1).mean()
        loss_non = - self.gamma * (self.temp**2) * loss_non
        return loss_t + loss_non


def ref_uskd(fc, zipf_raw, fea_mid, logit_s, gt_label, alpha=1.0, beta=0.1, mu=0.005):
    """yzd-v/cls_KD uskd.py forward, re-typed (hard labels)."""
    label = gt_label.view(len(gt_label), 1)
    value = torch.ones_like(label)
    N, c = logit_s.shape
    s_i = F.softmax(logit_s, dim=1)
    s_t = torch.gather(s_i, 1, label)
    p_t = s_t**2
    p_t = p_t + value - p_t.mean(0, True)
    p_t[value == 0] = 0
    p_t = p_t.detach()
    s_i = F.log_softmax(logit_s, dim=1)
    s_t = torch.gather(s_i, 1, label)
    loss_t = - (p_t * s_t).sum(dim=1).mean()
    target = torch.zeros_like(logit_s).scatter_(1, label, 0.9) + 0.1 * torch.ones_like(logit_s) / c
    w_fc = fc(fea_mid)
    w_i = F.log_softmax(w_fc, dim=1)
    loss_weak = - (mu * target * w_i).sum(dim=1).mean()
    w_i = F.softmax(w_fc, dim=1)
    w_t = torch.gather(w_i, 1, label)
    rank = w_i / (1 - w_t.sum(1, True) + 1e-6) + s_i / (1 - s_t.sum(1, True) + 1e-6)
    _, rank = torch.sort(rank, descending=True, dim=-1)
    z_i = zipf_raw.repeat(N, 1)
    ids_sort = torch.argsort(rank)
    z_i = torch.gather(z_i, dim=1, index=ids_sort)
    mask = torch.ones_like(logit_s).scatter_(1, label, 0).bool()
    logit_s = logit_s[mask].reshape(N, -1)
    ns_i = F.log_softmax(logit_s, dim=1)
    nz_i = z_i[mask].reshape(N, -1)
    nz_i = nz_i / nz_i.sum(dim=1, keepdim=True)
    nz_i = nz_i.detach()
    loss_non = - (nz_i * ns_i).sum(dim=1).mean()
    return alpha * loss_t + beta * loss_non + loss_weak


def _logits(n=16, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, generator=g) * 3, torch.randn(n, c, generator=g) * 3,
            torch.randint(0, c, (n,), generator=g))


@pytest.mark.parametrize("temp,gamma", [(1.0, 1.5), (2.0, 1.0), (0.5, 0.7)])
def test_nkd_matches_reference(temp, gamma):
    for seed in range(3):
        s, t, y = _logits(seed=seed)
        ref = RefNKDLoss(temp, gamma)(s, t, y)
        assert abs(nkd_loss(s, t, y, temp, gamma).item() - ref.item()) <= 1e-6
        onehot = F.one_hot(y, 10).float()  # soft/mixup labels take the argmax, as in the reference
        assert abs(nkd_loss(s, t, onehot, temp, gamma).item() - ref.item()) <= 1e-6


def test_nkd_one_hot_teacher_reduces_to_ce():
    s, _, y = _logits()
    teacher = F.one_hot(y, 10).float() * 1e4  # softmax = one-hot at t
    loss_t, loss_non = nkd_terms(s, teacher, y)
    assert abs(loss_t.item() - F.cross_entropy(s, y).item()) <= 1e-6
    # with γ = 0 (no non-target supervision) the whole loss is CE; with γ > 0 the non-target term of a one-hot
    # teacher is uniform over the C-1 classes, as in the reference
    assert abs(nkd_loss(s, teacher, y, gamma=0.0).item() - F.cross_entropy(s, y).item()) <= 1e-6
    uniform = -1.5 * F.log_softmax(s[torch.ones_like(s, dtype=torch.bool).scatter_(1, y[:, None], False)]
                                   .reshape(16, 9), dim=1).mean(dim=1).mean()
    assert abs(loss_non.item() - uniform.item()) <= 1e-5


def test_nkd_non_target_over_c_minus_1():
    s, t, y = _logits()
    _, base = nkd_terms(s, t, y)
    # changing the target logits (student and teacher) leaves the non-target term unchanged: it sees C-1 classes
    s2, t2 = s.clone(), t.clone()
    s2[torch.arange(16), y] += 50.0
    t2[torch.arange(16), y] -= 50.0
    _, moved = nkd_terms(s2, t2, y)
    assert abs(moved.item() - base.item()) <= 1e-5
    # and equals the explicit C-1 sum
    mask = torch.ones_like(s, dtype=torch.bool).scatter_(1, y[:, None], False)
    ns, nt = s[mask].reshape(16, 9), t[mask].reshape(16, 9)
    explicit = -1.5 * (F.softmax(nt, 1) * F.log_softmax(ns, 1)).sum(1).mean()
    assert ns.shape[1] == 9 and abs(base.item() - explicit.item()) <= 1e-6


def test_zipf_sums_to_one():
    for n in (1, 9, 999):
        z = zipf(n)
        assert abs(z.sum().item() - 1.0) <= 1e-6 and bool((z[:-1] >= z[1:]).all())


def test_uskd_matches_reference():
    torch.manual_seed(0)
    loss = USKDLoss(channels=12, num_classes=10)
    for seed in range(3):
        s, _, y = _logits(seed=seed)
        feat = torch.randn(16, 12, generator=torch.Generator().manual_seed(seed + 10))
        ref = ref_uskd(loss.fc, loss.zipf_raw, feat, s, y)
        assert abs(loss(feat, s, y).item() - ref.item()) <= 1e-6
    s.requires_grad_(True)
    loss(feat, s, y).backward()
    assert s.grad is not None and loss.fc.weight.grad is not None


def test_kd_and_soft_ce():
    s, t, _ = _logits()
    assert kd_loss(t, t).abs().item() <= 1e-6 and kd_loss(s, t).item() > 0
    p = F.softmax(t, 1)
    ent = -(p * F.log_softmax(t, 1)).sum(1).mean()
    assert abs(soft_target_ce(t, p).item() - ent.item()) <= 1e-5


def test_regression_distill():
    g = torch.Generator().manual_seed(0)
    s_out, t_out, y = (torch.randn(8, 1, generator=g) for _ in range(3))
    s_feat, t_feat = torch.randn(8, 16, generator=g), torch.randn(8, 32, generator=g)
    rd = RegressionDistill(16, 32, alpha=0.7, beta=0.5)
    assert isinstance(rd.proj, nn.Linear)
    val = rd(s_out, t_out, y, s_feat, t_feat)
    want = 0.7 * F.mse_loss(s_out, t_out) + 0.3 * F.mse_loss(s_out, y) + 0.5 * F.mse_loss(rd.proj(s_feat), t_feat)
    assert abs(val.item() - want.item()) <= 1e-6
    assert RegressionDistill(16, 16)(t_out, t_out).item() == 0.0
