"""Distillation losses: classic KD (temperature), NKD and USKD (after github.com/yzd-v/cls_KD), the soft-target
CE of TinyViT's sparse logits, and regression distillation (teacher prediction + features) for autofocus."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    """Hinton KD: T² · KL(softmax(t/T) || softmax(s/T)), averaged over the batch."""
    t = temperature
    return F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher.detach() / t, dim=1),
                    reduction="batchmean", log_target=True) * t * t


def soft_target_ce(student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """−Σ ŷ log softmax(z_s), mean over the batch (TinyViT's loss on a rebuilt dense target)."""
    return -(target * F.log_softmax(student, dim=1)).sum(dim=1).mean()


def _labels(gt: torch.Tensor) -> torch.Tensor:
    return gt.argmax(dim=1, keepdim=True) if gt.ndim > 1 else gt.view(-1, 1)


def _non_target(x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """(N, C) → (N, C-1): drop each row's target column."""
    mask = torch.ones_like(x, dtype=torch.bool).scatter_(1, label, False)
    return x[mask].reshape(x.shape[0], -1)


def nkd_terms(student: torch.Tensor, teacher: torch.Tensor, gt: torch.Tensor, temperature: float = 1.0,
              gamma: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(target term, non-target term) of L_NKD: −mean T_t log S_t and −γλ² mean Σ_{i≠t} N(T/λ)_i log N(S/λ)_i,
    the non-target softmaxes taken over the C−1 non-target classes."""
    label = _labels(gt)
    s_t = torch.gather(F.log_softmax(student, dim=1), 1, label)
    t_t = torch.gather(F.softmax(teacher, dim=1), 1, label).detach()
    loss_t = -(t_t * s_t).mean()
    log_ns = F.log_softmax(_non_target(student, label) / temperature, dim=1)
    nt = F.softmax(_non_target(teacher, label).detach() / temperature, dim=1)
    loss_non = -gamma * temperature**2 * (nt * log_ns).sum(dim=1).mean()
    return loss_t, loss_non


def nkd_loss(student: torch.Tensor, teacher: torch.Tensor, gt: torch.Tensor, temperature: float = 1.0,
             gamma: float = 1.5) -> torch.Tensor:
    """L_NKD (add CE(gt) for the total). Defaults λ = 1, γ = 1.5 (1.0 for DeiT)."""
    loss_t, loss_non = nkd_terms(student, teacher, gt, temperature, gamma)
    return loss_t + loss_non


def zipf(n: int, device: torch.device | None = None) -> torch.Tensor:
    """1/rank for ranks 1..n, renormalised to sum to 1."""
    z = 1.0 / torch.arange(1, n + 1, dtype=torch.float32, device=device)
    return z / z.sum()


class USKDLoss(nn.Module):
    """Teacher-free USKD: target soft label p_t = S_t² + 1 − mean_batch(S_t²), Zipf non-target labels ranked by a
    weak linear head on an intermediate feature plus the final output, weak head trained with smoothed CE (μ).
    `reference_quirk` (default True) ranks with the final log-probabilities as the official code does."""

    def __init__(self, channels: int, num_classes: int, alpha: float = 1.0, beta: float = 0.1, mu: float = 0.005,
                 reference_quirk: bool = True) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)
        self.alpha, self.beta, self.mu, self.quirk = alpha, beta, mu, reference_quirk
        self.register_buffer("zipf_raw", 1.0 / torch.arange(1, num_classes + 1, dtype=torch.float32),
                             persistent=False)

    def forward(self, feature: torch.Tensor, student: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        if gt.ndim > 1:  # mixup: top-2 label values
            value, label = torch.sort(gt, descending=True, dim=-1)
            value, label = value[:, :2], label[:, :2]
        else:
            label = gt.view(-1, 1)
            value = torch.ones_like(label, dtype=student.dtype)
        n, c = student.shape
        s_t = torch.gather(F.softmax(student, dim=1), 1, label)
        p_t = s_t**2
        p_t = p_t + value - p_t.mean(0, True)
        p_t = torch.where(value == 0, torch.zeros_like(p_t), p_t).detach()
        log_s = F.log_softmax(student, dim=1)
        loss_t = -(p_t * torch.gather(log_s, 1, label)).sum(dim=1).mean()

        if gt.ndim > 1:
            target = gt * 0.9 + 0.1 / c
        else:
            target = torch.zeros_like(student).scatter_(1, label, 0.9) + 0.1 / c
        w_logits = self.fc(feature)
        loss_weak = -(self.mu * target * F.log_softmax(w_logits, dim=1)).sum(dim=1).mean()

        w = F.softmax(w_logits, dim=1)
        w_t = torch.gather(w, 1, label)
        s_rank = log_s if self.quirk else F.softmax(student, dim=1)
        s_rank_t = torch.gather(log_s, 1, label) if self.quirk else s_t
        rank = w / (1 - w_t.sum(1, True) + 1e-6) + s_rank / (1 - s_rank_t.sum(1, True) + 1e-6)
        order = torch.argsort(rank, descending=True, dim=-1)
        z = torch.gather(self.zipf_raw.repeat(n, 1), 1, torch.argsort(order))
        mask = torch.ones_like(student, dtype=torch.bool).scatter_(1, label, False)
        nz = z[mask].reshape(n, -1)
        nz = (nz / nz.sum(dim=1, keepdim=True)).detach()
        ns = F.log_softmax(student[mask].reshape(n, -1), dim=1)
        loss_non = -(nz * ns).sum(dim=1).mean()
        return self.alpha * loss_t + self.beta * loss_non + loss_weak


class RegressionDistill(nn.Module):
    """Regression distillation (autofocus): α·MSE(student, teacher prediction) + β·MSE(proj(student features),
    teacher features) [+ (1−α)·MSE(student, ground truth) when y is given]. `proj` is a Linear when the widths
    differ (or when asked), else the identity."""

    def __init__(self, student_dim: int = 0, teacher_dim: int = 0, alpha: float = 0.5, beta: float = 1.0,
                 project: bool | None = None) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta
        use = (student_dim != teacher_dim) if project is None else project
        self.proj: nn.Module = nn.Linear(student_dim, teacher_dim) if use and student_dim else nn.Identity()

    def forward(self, s_out: torch.Tensor, t_out: torch.Tensor, y: torch.Tensor | None = None,
                s_feat: torch.Tensor | None = None, t_feat: torch.Tensor | None = None) -> torch.Tensor:
        loss = self.alpha * F.mse_loss(s_out, t_out.detach())
        if y is not None:
            loss = loss + (1.0 - self.alpha) * F.mse_loss(s_out, y)
        if self.beta and s_feat is not None and t_feat is not None:
            loss = loss + self.beta * F.mse_loss(self.proj(s_feat), t_feat.detach())
        return loss
