"""Depth reparameterization: branched == merged at λ=1 with random LN affines, refusal at λ<1,
plain parameter count, ONNX export of the merged model with ORT parity."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from app.train.arch.vit import VisionTransformer, count_params, create_model  # noqa: E402
from app.train.reparam import BranchedViT, branched_from_teacher, lambda_at  # noqa: E402

TEACHER = {"depth": 12, "width": 32, "heads": 2, "img_size": 32, "num_outputs": 5, "mlp_ratio": 2.0}

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def randomised(model, seed=0, scale=0.2):
    """Every parameter random, LayerNorm weights/biases included (RepVGG tools/verify.py style)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
            else:
                p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return randomised(create_model("vit-micro", **TEACHER))


@pytest.mark.parametrize("depth", [6, 4, 3])
def test_branched_equals_merged_fp32(teacher, depth):
    student = branched_from_teacher(teacher, depth)
    randomised(student, seed=depth)  # branches differ from the teacher; LN affines non-trivial per branch
    norms = [p for n, p in student.named_parameters() if "norm" in n and n.endswith("weight")]
    assert any((p - 1).abs().max() > 0.3 for p in norms)
    student.set_lambda(1.0)
    merged = student.reparameterize()
    assert type(merged) is VisionTransformer and merged.config.depth == depth
    assert merged.config.width == teacher.config.width
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        yb, ym = student(x), merged(x)
    assert yb.abs().max() > 1e-2  # a non-trivial output
    assert (yb - ym).abs().max().item() <= 1e-5
    assert torch.equal(yb.argmax(1), ym.argmax(1))  # Verify (4), on random inputs: same top-1


def test_branched_equals_merged_fp64(teacher):
    student = randomised(branched_from_teacher(teacher, 4).double(), seed=7)
    student.set_lambda(1.0)
    merged = student.reparameterize()
    assert merged.pos_embed.dtype == torch.float64
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert (student(x) - merged(x)).abs().max().item() <= 1e-10


def test_refuses_below_one(teacher):
    student = branched_from_teacher(teacher, 6)
    student.set_lambda(0.99)
    with pytest.raises(ValueError, match="λ = 0.99 < 1"):
        student.reparameterize()
    with pytest.raises(ValueError):
        student.set_lambda(1.5)
    with pytest.raises(ValueError, match="divide"):
        branched_from_teacher(teacher, 5)


@pytest.mark.parametrize("depth", [6, 4, 3])
def test_param_count_is_plain(teacher, depth):
    student = branched_from_teacher(teacher, depth)
    student.set_lambda(1.0)
    plain = create_model("vit-micro", **{**TEACHER, "depth": depth})
    assert count_params(student.reparameterize()) == count_params(plain)
    assert count_params(student) > count_params(plain)  # the branches cost parameters only while training


def test_lambda_zero_is_parallel_teacher_blocks(teacher):
    """At λ=0, with K=1 the student is the teacher itself (checks the init and the unjoined path)."""
    student = branched_from_teacher(teacher, 12)
    assert isinstance(student, BranchedViT) and student.branches == 1
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (student(x) - teacher(x)).abs().max().item() <= 1e-5


def test_lambda_schedule():
    assert lambda_at(0, 100) == 0.0 and lambda_at(100, 100) == 1.0 and lambda_at(70, 100) == 1.0
    vals = [lambda_at(s, 100) for s in range(101)]
    assert all(b >= a for a, b in zip(vals, vals[1:], strict=False))


def test_merged_onnx_export_parity(teacher, tmp_path):
    pytest.importorskip("onnxscript")
    from app.train.export import export_onnx

    student = randomised(branched_from_teacher(teacher, 3), seed=3, scale=0.1)
    student.set_lambda(1.0)
    merged = student.reparameterize()
    card = export_onnx(merged, torch.zeros(2, 3, 32, 32), tmp_path / "m", {"id": "merged-test", "task": "test"},
                       latency_runs=3, batch_sizes=(1, 2), image_sizes=[(32, 32), (48, 40)])
    assert card.params == count_params(merged)
    assert card.extra["export"]["parity_max_abs_diff"] <= 1e-4
