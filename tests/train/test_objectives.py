"""Training objectives: the registry, each objective's loss, metrics and data checks, a metric-learning model
trained and exported through the same loop and exporter as a classifier, and the wizard's scorer for it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from app.core.errors import BadInput, JobError  # noqa: E402
from app.core.jobs import CancelToken, JobSpec  # noqa: E402
from app.core.metrics import retrieval_metrics  # noqa: E402
from app.core.problems import scorer  # noqa: E402
from app.train import objectives  # noqa: E402
from app.train.arch.vit import VisionTransformer  # noqa: E402
from app.train.loop import TrainSpec, evaluate, load_data, train  # noqa: E402
from app.train.objectives import Objective, get_objective, register_objective  # noqa: E402

METRIC_PARAMS = {
    "model": "vit-micro", "task": "metric",
    "model_overrides": {"depth": 1, "width": 32, "heads": 2, "num_outputs": 8, "img_size": 32},
    "data": {"entry": "plugins.demo.shapes:make_dataset", "seed": 1, "params": {"n_train": 256, "n_val": 64,
                                                                                  "size": 32}},
    "steps": 120, "batch_size": 32, "lr": 3e-3, "warmup_steps": 5, "log_every": 20, "threads": 1,
}


def clustered(n_per: int, k: int, dim: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    y = np.repeat(np.arange(k), n_per)
    return (centres[y] + spread * rng.normal(size=(len(y), dim))).astype(np.float32), y


def test_the_three_objectives_are_registered_and_unknown_tasks_refused():
    assert {"classification", "regression", "metric"} <= set(objectives.objective_names())
    with pytest.raises(JobError, match="task must be one of"):
        get_objective("segmentation")
    job = JobSpec("train", {**METRIC_PARAMS, "task": "segmentation"}, out_dir="/tmp/x")
    with pytest.raises(JobError, match="task must be one of"):
        TrainSpec.from_job(job)


def test_a_loss_must_fit_its_objective():
    with pytest.raises(JobError, match="does not fit a metric task"):
        TrainSpec.from_job(JobSpec("train", {**METRIC_PARAMS, "loss": "ce"}, out_dir="/tmp/x"))
    assert TrainSpec.from_job(JobSpec("train", {**METRIC_PARAMS, "loss": "triplet"}, out_dir="/tmp/x")).loss_name \
        == "triplet"


def test_retrieval_metrics_rank_separated_clusters_above_mixed_ones():
    tight, y = clustered(10, 4, 8, 0.05)
    loose, _ = clustered(10, 4, 8, 5.0)
    good, bad = retrieval_metrics(tight, y), retrieval_metrics(loose, y)
    assert good == {"recall_at_1": 1.0, "map": 1.0}
    assert bad["recall_at_1"] < 0.8 and bad["map"] < 0.6
    # a query whose label no other sample has does not count
    assert retrieval_metrics(np.eye(3, dtype=np.float32), np.array([0, 1, 2])) == {"recall_at_1": 0.0, "map": 0.0}


@pytest.mark.parametrize("loss", ["supcon", "triplet", "infonce"])
def test_metric_losses_prefer_embeddings_grouped_by_label(loss):
    fn = get_objective("metric").loss_fn(loss)
    tight, y = clustered(4, 4, 8, 0.05, seed=3)
    loose, _ = clustered(4, 4, 8, 3.0, seed=3)
    yt = torch.from_numpy(y)
    assert float(fn(torch.from_numpy(tight), yt)) < float(fn(torch.from_numpy(loose), yt))
    # the loss is differentiable w.r.t. the embeddings
    e = torch.from_numpy(loose).requires_grad_(True)
    fn(e, yt).backward()
    assert e.grad is not None and float(e.grad.abs().sum()) > 0


def test_data_checks_name_what_does_not_fit():
    metric, cls, reg = (get_objective(n) for n in ("metric", "classification", "regression"))
    with pytest.raises(JobError, match="positive pair"):
        metric.check_data(torch.arange(5), 8)
    with pytest.raises(JobError, match="num_outputs"):
        cls.check_data(torch.tensor([0, 4]), 4)
    with pytest.raises(JobError, match="columns"):
        reg.check_data(torch.zeros(3, 2), 1)
    cls.check_data(torch.tensor([0, 3]), 4)
    assert reg.targets(np.zeros(3)).shape == (3, 1) and cls.targets(np.zeros(3)).dtype == torch.int64


@pytest.mark.slow  # 120 training steps and an ONNX export
def test_a_metric_model_trains_exports_and_scores(tmp_path, one_torch_thread):
    """The shapes' four classes as identities: the embedding ranks the validation set better than the model it
    started from; export names the output "embedding" and the card carries the task and its retrieval metrics."""
    spec = TrainSpec.from_job(JobSpec("train", METRIC_PARAMS, out_dir=str(tmp_path / "run"), seed=0))
    torch.manual_seed(spec.seed)
    start = VisionTransformer(spec.model_config())
    spec.objective.init_model(start, spec.seed)
    _, _, xv, yv = load_data(spec.data, spec.seed, spec.objective)
    before = evaluate(start, xv, yv, spec)
    events = []
    res = train(spec, events.append, CancelToken(), emit_finished=False)
    assert res.status == "finished" and res.config.head == "metric"
    assert {"recall_at_1", "map", "val_loss"} <= set(res.metrics)
    assert res.metrics["map"] > before["map"] + 0.03, (before, res.metrics)

    from app.train.pipeline import export_trained

    card, out = export_trained(res.model, res.config, spec, train_seconds=res.train_seconds,
                               val_metrics=res.metrics, export={"out_dir": str(tmp_path / "model"),
                                                                "id": "shapes-embed", "latency_runs": 2})
    assert card.task == "metric" and card.outputs[0].name == "embedding"
    assert {m["name"] for m in card.metrics} >= {"recall_at_1", "map"}
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    emb = sess.run(None, {sess.get_inputs()[0].name: xv.numpy()})[0]
    assert emb.shape == (len(xv), 8)
    metric, value, per = __import__("app.core.wizard_eval", fromlist=["score"]).score(emb, yv.numpy(), "metric")
    assert metric == "recall_at_1" and value == pytest.approx(res.metrics["recall_at_1"], abs=1e-6) and per == {}


def test_the_wizard_scorer_follows_the_objective_and_refuses_an_unknown_one():
    assert scorer("classification").metric == "accuracy" and scorer("regression").plots
    with pytest.raises(BadInput, match="no metric"):
        scorer("segmentation")


def test_a_registered_objective_is_trainable(tmp_path, one_torch_thread):
    """A plug-in's own objective (here: a classifier trained with label smoothing) runs through the same loop."""
    import torch.nn.functional as F

    from tests.train.conftest import tiny_params

    def smoothed(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, y, label_smoothing=0.1)

    base = get_objective("classification")
    register_objective(Objective("smoothed-classification", {"ce_smooth": smoothed}, "ce_smooth", "logits",
                                 np.int64, flat_targets=False, vit_head="classification", _check=base._check,
                                 _metrics=base._metrics))
    try:
        spec = TrainSpec.from_job(JobSpec("train", tiny_params(task="smoothed-classification", steps=3),
                                          out_dir=str(tmp_path), seed=0))
        events = []
        res = train(spec, events.append, CancelToken())
        assert res.status == "finished" and {"accuracy", "macro_f1"} <= set(res.metrics)
        with pytest.raises(JobError, match="labels span"):  # the objective's data check runs
            train(TrainSpec.from_job(JobSpec("train", tiny_params(
                task="smoothed-classification", steps=3, model_overrides={"depth": 1, "width": 32, "heads": 2,
                                                                          "num_outputs": 2, "img_size": 32}),
                out_dir=str(tmp_path / "b"))), events.append, CancelToken())
    finally:
        objectives._OBJECTIVES.pop("smoothed-classification", None)
