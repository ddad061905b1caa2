"""Function-preserving deepening: the deepened model computes the same outputs (random non-trivial weights and
LayerNorm affines), refuses mismatched configs, and starts a deeper training run through `init_deepen`."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from app.core.errors import JobError  # noqa: E402
from app.core.jobs import CancelToken  # noqa: E402
from app.train.arch.vit import VisionTransformer, create_model  # noqa: E402
from app.train.checkpoint import CKPT_LAST, load_checkpoint  # noqa: E402
from app.train.deepen import deepen_checkpoint, deepen_state  # noqa: E402
from app.train.loop import TrainSpec, train  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = {"width": 32, "heads": 2, "img_size": 32, "num_outputs": 3, "mlp_ratio": 2.0}


def randomised(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(base + 0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.mark.parametrize("src,dst", [(2, 4), (3, 12), (6, 12)])
def test_deepened_model_computes_the_same_function(src, dst):
    shallow = randomised(create_model("vit-micro", depth=src, **SMALL))
    deep = VisionTransformer(create_model("vit-micro", depth=dst, **SMALL).config).eval()
    deep.load_state_dict(deepen_state(shallow.state_dict(), src, dst))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(deep(x), shallow(x), atol=1e-5)
        # the new blocks are live: un-zeroing one of them changes the output
        deep.blocks[1].mlp.fc2.weight.add_(0.1 * torch.randn(deep.blocks[1].mlp.fc2.weight.shape))
        assert not torch.allclose(deep(x), shallow(x), atol=1e-3)


def test_refuses_non_multiple_depth_and_other_differences():
    shallow = create_model("vit-micro", depth=4, **SMALL)
    with pytest.raises(JobError, match="multiple"):
        deepen_state(shallow.state_dict(), 4, 6)
    init = {"config": shallow.config.to_dict(), "model": shallow.state_dict()}
    other = create_model("vit-micro", depth=8, **{**SMALL, "width": 64}).config.to_dict()
    with pytest.raises(JobError, match="width"):
        deepen_checkpoint(init, other)


def _run(job):
    events = []
    return train(TrainSpec.from_job(job), events.append, CancelToken()).model, events


def test_training_starts_from_the_deepened_checkpoint(tmp_path, tiny_job):
    shallow, _ = _run(tiny_job(tmp_path / "shallow", steps=4))
    src = tmp_path / "shallow" / CKPT_LAST
    deep_model = {"depth": 2, "width": 32, "heads": 2, "num_outputs": 4, "img_size": 32}  # conftest TINY_MODEL, deeper
    with pytest.raises(JobError, match="different model config"):
        _run(tiny_job(tmp_path / "plain", steps=1, init=str(src), model_overrides=deep_model))
    deep, events = _run(tiny_job(tmp_path / "deep", steps=1, lr=1e-12, warmup_steps=0, init=str(src),
                                 init_deepen=True, model_overrides=deep_model))
    assert events[-1].event == "finished"
    assert len(deep.blocks) == 2
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # lr 1e-12: the one step leaves the deepened start, which equals the shallow model
        assert torch.allclose(deep.eval()(x), shallow.eval()(x), atol=1e-5)
    assert load_checkpoint(tmp_path / "deep" / CKPT_LAST)["config"]["depth"] == 2
