"""Training objectives: what a model learns, as one type (loss, head, metrics, data checks, distillation target)
registered under the task name that specs and cards carry ("classification", "regression", "metric"). Training,
evaluation, compression and export ask the objective instead of branching on the task string."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from app.core.errors import JobError, VitascopeError
from app.core.metrics import classification_metrics, regression_metrics, retrieval_metrics

from .clip_distill import contrastive_loss
from .dcal import batch_hard_triplet
from .distill import kd_loss

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def logcosh(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = out - y
    return (d + F.softplus(-2.0 * d) - math.log(2.0)).mean()


def triplet(emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch-hard triplet loss on unit embeddings (margin 0.3), the retrieval trainer's metric loss."""
    return batch_hard_triplet(emb, y, margin=0.3)


def infonce(emb: torch.Tensor, y: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CLIP's symmetric InfoNCE on same-label pairs: one (anchor, positive) pair per label that occurs twice in the
    batch, the other pairs' positives being the negatives (no two pairs share a label: no false negatives)."""
    e = F.normalize(emb, dim=-1)
    anchors, positives = [], []
    for label in torch.unique(y):
        idx = torch.nonzero(y == label).flatten()
        if len(idx) >= 2:
            anchors.append(idx[0])
            positives.append(idx[1])
    if len(anchors) < 2:  # nothing to contrast: a zero loss that keeps the graph
        return emb.sum() * 0.0
    a, p = torch.stack(anchors), torch.stack(positives)
    return contrastive_loss(e[a], e[p], scale)


def supcon(emb: torch.Tensor, y: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Supervised contrastive loss: each sample's softmax over the others (cosine × `scale`) should put its mass on
    the samples with its label; anchors without a positive in the batch are skipped."""
    e = F.normalize(emb, dim=-1)
    n = len(e)
    eye = torch.eye(n, dtype=torch.bool, device=e.device)
    logits = (scale * e @ e.T).masked_fill(eye, float("-inf"))
    log_p = F.log_softmax(logits, dim=1).masked_fill(eye, 0.0)
    pos = (y[:, None] == y[None, :]) & ~eye
    count = pos.sum(1)
    keep = count > 0
    if not bool(keep.any()):
        return emb.sum() * 0.0
    return -((log_p * pos).sum(1)[keep] / count[keep]).mean()


@dataclass(frozen=True)
class Objective:
    """One learning problem. `losses` maps loss names a spec may give to functions (out, y) → scalar; `head` is
    the ViT head kind (`vit_head`, default the name); `output_name` names the ONNX output; `target_dtype` is what
    targets are converted to."""

    name: str
    losses: Mapping[str, LossFn]
    default_loss: str
    output_name: str
    target_dtype: type = np.float32
    flat_targets: bool = True  # (N, ...) targets reshaped to (N, k); False: one label per sample
    distill_modes: tuple[str, ...] = ("kd",)  # compression's --distill modes that fit; "kd" is distill_loss
    default_distill: str = "kd"
    summary: str = ""
    vit_head: str = ""  # the ViT head this objective trains (arch.vit.HEADS); default: its own name
    _check: Callable[[torch.Tensor, int], None] | None = field(default=None, repr=False)
    _metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = field(default=None, repr=False)
    _distill: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor] | None = field(
        default=None, repr=False)
    _init_head: Callable[[nn.Module, int], None] | None = field(default=None, repr=False)

    @property
    def head(self) -> str:
        return self.vit_head or self.name

    def loss_name(self, loss: str = "") -> str:
        return loss or self.default_loss

    def loss_fn(self, loss: str = "", error: type[VitascopeError] = JobError) -> LossFn:
        """The named loss (default: the objective's); `error` names the losses that fit."""
        name = self.loss_name(loss)
        if name not in self.losses:
            fits = ", ".join(repr(k) for k in self.losses)
            raise error(f"job spec: loss {name!r} does not fit a {self.name} task (use {fits})")
        return self.losses[name]

    def targets(self, a: np.ndarray) -> torch.Tensor:
        """Targets as the loss wants them: int64 labels, or float32 rows of k values."""
        y = np.ascontiguousarray(a, dtype=self.target_dtype)
        if self.flat_targets:
            y = y.reshape(len(y), int(np.prod(y.shape[1:], dtype=np.int64)))  # -1 fails on an empty split
        return torch.from_numpy(y)

    def init_model(self, model: nn.Module, seed: int) -> None:
        """Adjust a freshly built model for this objective (from its own generator: the global RNG is untouched)."""
        if self._init_head is not None:
            self._init_head(model, seed)

    def check_data(self, y: torch.Tensor, num_outputs: int) -> None:
        """JobError if the targets do not fit a model with `num_outputs` outputs."""
        if self._check is not None:
            self._check(y, num_outputs)

    def metrics(self, out: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Validation metrics of outputs `out` against targets `y` (numpy)."""
        return self._metrics(out, y) if self._metrics is not None else {}

    def distill_loss(self, s_out: torch.Tensor, t_out: torch.Tensor, y: torch.Tensor,
                     temperature: float = 4.0) -> torch.Tensor:
        """The default ("kd") distillation loss of a student's outputs against the teacher's and the targets."""
        if self._distill is None:
            raise JobError(f"a {self.name} model cannot be distilled")
        return self._distill(s_out, t_out, y, temperature)


def _check_labels(y: torch.Tensor, num_outputs: int) -> None:
    if int(y.min()) < 0 or int(y.max()) >= num_outputs:
        raise JobError(f"labels span {int(y.min())}..{int(y.max())} but the model has {num_outputs} outputs "
                       "(set model_overrides.num_outputs)")


def _check_columns(y: torch.Tensor, num_outputs: int) -> None:
    if y.shape[1] != num_outputs:
        raise JobError(f"targets have {y.shape[1]} columns but the model has {num_outputs} outputs")


def _check_identities(y: torch.Tensor, num_outputs: int) -> None:
    if y.ndim != 1 or int(y.min()) < 0:
        raise JobError("metric learning needs one non-negative identity label per sample")
    if int(torch.bincount(y).max()) < 2:
        raise JobError("metric learning needs at least one label with two or more samples (a positive pair)")
    if num_outputs < 2:
        raise JobError(f"an embedding of {num_outputs} dimension cannot rank; set model_overrides.num_outputs >= 2")


def _random_head(model: nn.Module, seed: int) -> None:
    """A zero head (the classifier's start) maps every image to one embedding, and a ranking loss has no gradient
    there; a trained bias drifts every embedding toward one direction. Start the embedding head from random weights
    of unit gain and keep its bias at zero."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        g = torch.Generator().manual_seed(int(seed) + 1)
        with torch.no_grad():
            head.weight.copy_(torch.randn(head.weight.shape, generator=g) / math.sqrt(head.in_features))
            if head.bias is not None:
                head.bias.zero_()
                head.bias.requires_grad_(False)


def _kd_classification(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    return kd_loss(s, t, temperature) + F.cross_entropy(s, y)


def _kd_regression(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.mse_loss(s, t)


def _kd_embedding(s: torch.Tensor, t: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """The student's unit embedding matches the teacher's (cosine), plus the metric loss on the labels."""
    return (1 - F.cosine_similarity(s, t, dim=-1)).mean() + triplet(s, y)


CLASSIFICATION = Objective(
    "classification", {"ce": F.cross_entropy}, "ce", "logits", np.int64, flat_targets=False,
    distill_modes=("kd", "nkd", "uskd", "logits"), summary="one label per image; cross-entropy; accuracy, macro-F1",
    _check=_check_labels, _metrics=classification_metrics, _distill=_kd_classification)
REGRESSION = Objective(
    "regression", {"mse": F.mse_loss, "logcosh": logcosh, "l1": F.l1_loss}, "mse", "output", np.float32,
    distill_modes=("kd", "regression"), default_distill="regression",
    summary="k real values per image; MSE, log-cosh or L1; MAE, RMSE",
    _check=_check_columns, _metrics=regression_metrics, _distill=_kd_regression)
METRIC = Objective(
    "metric", {"supcon": supcon, "triplet": triplet, "infonce": infonce}, "supcon", "embedding", np.int64,
    flat_targets=False, distill_modes=("kd",),
    summary="an embedding per image, same identity close; supervised contrastive, batch-hard triplet or InfoNCE; "
    "leave-one-out recall@1, mAP", _check=_check_identities, _metrics=retrieval_metrics, _distill=_kd_embedding,
    _init_head=_random_head)

_OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> None:
    """Make `objective` trainable under its name (a plug-in may add its own)."""
    _OBJECTIVES[objective.name] = objective


def objective_names() -> tuple[str, ...]:
    return tuple(_OBJECTIVES)


def get_objective(name: str, error: type[VitascopeError] = JobError) -> Objective:
    """The objective registered as `name`; `error` (one line) for an unknown one."""
    try:
        return _OBJECTIVES[name]
    except (KeyError, TypeError):
        raise error(f"job spec: task must be one of {objective_names()}, got {name!r}") from None


for _obj in (CLASSIFICATION, REGRESSION, METRIC):
    register_objective(_obj)
