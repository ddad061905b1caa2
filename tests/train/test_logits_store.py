"""TinyViT sparse logit store: bit-identical augmentation replay (twice and across workers),
dense target sums to 1, stored-logit loss == online top-K-truncated teacher loss within fp16 tolerance, check mode."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from app.train.arch.vit import create_model  # noqa: E402
from app.train.distill import soft_target_ce  # noqa: E402
from app.train.logits_store import (  # noqa: E402
    LogitStore,
    augment_one,
    check_logits,
    dense_target,
    epoch_seeds,
    record_dtype,
    save_logits,
)

K, C = 3, 6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def teacher_model():
    torch.manual_seed(0)
    m = create_model("vit-micro", depth=1, width=32, heads=2, img_size=32, num_outputs=C)
    with torch.no_grad():
        m.head.weight.normal_(0, 1.0)
    return m.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    x = torch.rand(24, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    teacher = teacher_model()
    path = save_logits(teacher, x, tmp_path_factory.mktemp("store") / "s", topk=K, epochs=2, seed=5, batch=10)
    return teacher, x, path


class _Replay(torch.utils.data.Dataset):
    def __init__(self, x, seeds):
        self.x, self.seeds = x, seeds

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return augment_one(self.x[i], int(self.seeds[i]))


def test_record_layout(setup):
    _, x, path = setup
    assert record_dtype(K).itemsize == 4 + 4 * K
    store = LogitStore.open(path)
    assert (path / f"logits_top{K}_epoch1.bin").stat().st_size == len(x) * (4 + 4 * K)
    rec = store.records(0)
    assert rec["seed"].dtype == np.int32 and rec["idx"].dtype == np.int16 and rec["val"].dtype == np.float16
    assert np.array_equal(rec["seed"], epoch_seeds(5, 0, len(x)))
    assert not np.array_equal(store.records(1)["seed"], rec["seed"])


def test_replay_bit_identical_twice_and_across_workers(setup):
    _, x, _ = setup
    seeds = epoch_seeds(5, 0, len(x))
    a = torch.stack([augment_one(x[i], int(seeds[i])) for i in range(len(x))])
    b = torch.stack([augment_one(x[i], int(seeds[i])) for i in range(len(x))])
    assert torch.equal(a, b) and not torch.equal(a, x)  # deterministic, and really augmented
    loader = torch.utils.data.DataLoader(_Replay(x, seeds), batch_size=5, num_workers=2, shuffle=False)
    c = torch.cat(list(loader))
    assert torch.equal(a, c)


def test_dense_target_sums_to_one(setup):
    _, x, path = setup
    store = LogitStore.open(path)
    _, target = store.batch(x, np.arange(len(x)), 1)
    assert target.shape == (len(x), C)
    assert (target.sum(1) - 1).abs().max().item() <= 1e-6
    rec = store.records(1)
    idx, val = np.asarray(rec["idx"]), np.asarray(rec["val"]).astype(np.float32)
    others = (1 - val.sum(1)) / (C - K)
    mask = np.ones((len(x), C), bool)
    np.put_along_axis(mask, idx.astype(np.int64), False, 1)
    assert np.allclose(target.numpy()[mask].reshape(len(x), C - K), others[:, None], atol=1e-6)
    assert np.allclose(dense_target(idx, rec["val"], C).numpy(), target.numpy())


def test_stored_loss_matches_online_truncated_teacher(setup):
    teacher, x, path = setup
    store = LogitStore.open(path)
    student = create_model("vit-micro", depth=1, width=32, heads=2, img_size=32, num_outputs=C)
    with torch.no_grad():
        student.head.weight.normal_(0, 1.0)
    ids = np.arange(len(x))
    for epoch in range(2):
        xb, target = store.batch(x, ids, epoch)
        with torch.no_grad():
            stored_loss = soft_target_ce(student(xb), target)
            # online: the teacher on the same seeded augmentation, truncated to top-K (fp32)
            seeds = epoch_seeds(5, epoch, len(x))
            xo = torch.stack([augment_one(x[i], int(seeds[i])) for i in ids])
            p = torch.softmax(teacher(xo), 1)
            v, i = p.topk(K, 1)
            online = dense_target(i.numpy(), v.numpy(), C)
            online_loss = soft_target_ce(student(xo), online)
        assert torch.equal(xb, xo)
        assert abs(stored_loss.item() - online_loss.item()) <= 1e-3


def test_check_mode(setup, tmp_path):
    teacher, x, path = setup
    assert check_logits(teacher, x, path) <= 2e-3
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    rec = np.fromfile(bad / f"logits_top{K}_epoch0.bin", dtype=record_dtype(K))
    rec["val"][3] = np.float16(0.01)
    rec.tofile(bad / f"logits_top{K}_epoch0.bin")
    assert check_logits(teacher, x, bad) > 2e-3
