"""The training loop: determinism, cancel + resume = uninterrupted, checkpoints that carry their config,
clear errors for bad specs and failed checkpoint writes."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from app.core.errors import JobError  # noqa: E402
from app.core.jobs import CancelToken, JobSpec  # noqa: E402
from app.train import checkpoint as ckpt_mod  # noqa: E402
from app.train.checkpoint import CKPT_LAST, load_checkpoint, model_from_checkpoint  # noqa: E402
from app.train.loop import Batches, TrainSpec, lr_at, train  # noqa: E402


@pytest.fixture
def run(tiny_job):
    """run(out_dir, cancel_at=None, **kw): train a tiny spec; with cancel_at, cancel when the progress event of
    that step arrives."""
    return lambda out_dir, cancel_at=None, **kw: _run(tiny_job(out_dir, **kw), cancel_at)


def _run(job, cancel_at):
    spec = TrainSpec.from_job(job)
    cancel, events = CancelToken(), []

    def on_event(ev):
        events.append(ev)
        if cancel_at is not None and ev.event == "progress" and ev.step == cancel_at:
            cancel.cancel()

    return train(spec, on_event, cancel), events


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_weights(tmp_path, run):
    r1, ev = run(tmp_path / "a", model_overrides={"depth": 1, "width": 32, "heads": 2, "num_outputs": 4,
                                                  "img_size": 32, "dropout": 0.1})
    r2, _ = run(tmp_path / "b", model_overrides={"depth": 1, "width": 32, "heads": 2, "num_outputs": 4,
                                                 "img_size": 32, "dropout": 0.1})
    r3, _ = run(tmp_path / "c", seed=1)
    assert r1.status == "finished" and r1.step == 12
    assert same_weights(r1.model, r2.model)
    assert not same_weights(r1.model, r3.model)
    kinds = [e.event for e in ev]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert [e.step for e in ev if e.event == "progress"] == list(range(1, 13))
    assert {"metric", "checkpoint"} <= set(kinds)
    final = ev[-1].values
    assert 0 <= final["accuracy"] <= 1 and "macro_f1" in final and final["train_seconds"] > 0


def test_cancel_then_resume_is_bit_identical(tmp_path, run):
    overrides = {"depth": 1, "width": 32, "heads": 2, "num_outputs": 4, "img_size": 32, "dropout": 0.1}
    kw = dict(model_overrides=overrides, steps=14, eval_every=4, checkpoint_every=5, batch_size=32,
              augment=["hflip", "vflip", "rot90"])
    full, _ = run(tmp_path / "full", **kw)  # 96 samples / 32 → 3 steps per epoch: crosses epoch boundaries
    part, ev = run(tmp_path / "part", cancel_at=7, **kw)
    assert part.status == "cancelled" and part.step == 7
    assert ev[-1].event == "cancelled" and ev[-2].event == "checkpoint"
    assert load_checkpoint(tmp_path / "part" / CKPT_LAST)["step"] == 7
    resumed, ev2 = run(tmp_path / "part", resume=True, **kw)
    assert resumed.status == "finished"
    assert [e.step for e in ev2 if e.event == "progress"] == list(range(8, 15))
    assert same_weights(full.model, resumed.model)
    assert resumed.metrics == full.metrics


def test_checkpoint_carries_its_config(tmp_path, run):
    res, _ = run(tmp_path)
    ckpt = load_checkpoint(tmp_path / CKPT_LAST)
    assert ckpt["config"] == res.config.to_dict() and ckpt["spec"]["model"] == "vit-micro"
    assert ckpt["step"] == 12 and "optimizer" in ckpt and "torch" in ckpt["rng"]
    model, cfg, _ = model_from_checkpoint(tmp_path / CKPT_LAST)
    assert cfg == res.config and same_weights(model, res.model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), res.model(x))


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, run, monkeypatch):
    real_save, calls = torch.save, []

    def flaky_save(obj, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            real_save(obj, path, *a, **k)  # a partial temp file exists when the disk fills up
            raise OSError(28, "No space left on device")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(ckpt_mod.torch, "save", flaky_save)
    with pytest.raises(JobError, match=r"ckpt_last\.pt: cannot write checkpoint \(No space left on device\)"):
        run(tmp_path, checkpoint_every=4)
    assert load_checkpoint(tmp_path / CKPT_LAST)["step"] == 4
    assert not list(tmp_path.glob("*.tmp"))


def test_unwritable_out_dir(tmp_path, run):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JobError, match="cannot create the output folder"):
        run(blocker / "sub")


def test_regression_with_logcosh(tmp_path, run):
    res, ev = run(tmp_path, task="regression", loss="logcosh", steps=3,
                  model_overrides={"depth": 1, "width": 32, "heads": 2, "num_outputs": 1, "img_size": 32})
    assert res.status == "finished" and res.config.head == "regression"
    assert {"mae", "rmse", "val_loss"} <= set(ev[-1].values)


@pytest.mark.parametrize("params, message", [
    ({"colour": 1}, "unknown train parameter"),
    ({"model": "nope"}, "unknown model config"),
    ({"loss": "mse"}, "does not fit a classification"),
    ({"steps": 0}, "steps > 0 or epochs > 0"),
    ({"data": {"entry": "no_colon"}}, "package.module:function"),
    ({"model_overrides": {"depth": 1, "wdith": 3}}, "unknown ViT config field"),
    ({"augment": ["mixup"]}, "unknown augment"),
])
def test_bad_specs(tmp_path, tiny_job, params, message):
    job = tiny_job(tmp_path)
    job.params.update(params)
    with pytest.raises(JobError, match=message):
        TrainSpec.from_job(job)


def test_labels_must_fit_the_head(tmp_path, run):
    with pytest.raises(JobError, match="num_outputs"):
        run(tmp_path, model_overrides={"depth": 1, "width": 32, "heads": 2, "num_outputs": 2, "img_size": 32})


def test_schedule_and_batches():
    spec = TrainSpec(lr=1e-3, min_lr=1e-5, warmup_steps=10, out_dir="x", data={"entry": "a:b"}, steps=110)
    assert lr_at(spec, 0, 110) == pytest.approx(1e-4) and lr_at(spec, 9, 110) == pytest.approx(1e-3)
    assert lr_at(spec, 60, 110) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert lr_at(spec, 110, 110) == pytest.approx(1e-5)
    spec.schedule = "linear"
    assert lr_at(spec, 60, 110) == pytest.approx(1e-3 + (1e-5 - 1e-3) * 0.5)
    a, b = Batches(50, 16, seed=3), Batches(50, 16, seed=3)
    assert a.per_epoch == 3
    seq = [a.indices(s).tolist() for s in range(7)]
    assert [b.indices(s).tolist() for s in (6, 2, 0)] == [seq[6], seq[2], seq[0]]  # pure function of step
    epoch0 = sorted(sum(seq[:3], []))
    assert len(set(epoch0)) == 48 and seq[3] != seq[0]
    assert not math.isnan(lr_at(spec, 0, 1))


def test_from_job_takes_seed_and_paths():
    spec = TrainSpec.from_job(JobSpec("train", {"data": {"entry": "a:b"}, "steps": 1}, out_dir="o", seed=5,
                                      resume=True, name="n"))
    assert (spec.seed, spec.out_dir, spec.resume, spec.name) == (5, "o", True, "n")


def test_resume_past_the_end_keeps_the_step(tmp_path, run):
    first, _ = run(tmp_path, steps=6)
    again, ev = run(tmp_path, steps=3, resume=True)
    assert again.status == "finished" and again.step == 6 and ev[-1].step == 6
    assert same_weights(first.model, again.model)



def test_load_data_accepts_an_empty_training_split(monkeypatch):
    """Held-out-only data entries (used for card metrics) return an empty training part."""
    import numpy as np

    from app.train import loop

    arrays = (np.zeros((0, 3, 8, 8), np.float32), np.zeros(0, np.float32),
              np.zeros((2, 3, 8, 8), np.float32), np.ones(2, np.float32))
    monkeypatch.setattr(loop, "resolve_entry", lambda entry: lambda seed, **kw: arrays)
    xt, yt, xv, yv = loop.load_data({"entry": "heldout:only"}, 0, "regression")
    assert tuple(yt.shape) == (0, 1) and tuple(yv.shape) == (2, 1) and tuple(xt.shape) == (0, 3, 8, 8)


def test_vroll_shifts_rows_cyclically_per_sample_and_reproducibly():
    from app.train.loop import augment_batch

    x = torch.randn(16, 3, 8, 5)
    y = augment_batch(x, ["vroll"], seed=3, step=11)
    assert torch.equal(y, augment_batch(x, ["vroll"], seed=3, step=11))
    shifts = []
    for i in range(16):
        match = [k for k in range(8) if torch.equal(y[i], torch.roll(x[i], k, dims=1))]
        assert match, "every sample is a cyclic row shift of itself"
        shifts.append(match[0])
    assert len(set(shifts)) > 1
