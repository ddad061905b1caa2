"""Shared helpers for the core-library tests: tiny job specs on the demo shapes data (fast on 2 cores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.core.jobs import JobSpec

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = {"depth": 1, "width": 32, "heads": 2, "num_outputs": 4, "img_size": 32}
TINY_DATA = {"entry": "plugins.demo.shapes:make_dataset", "seed": 1,
             "params": {"n_train": 96, "n_val": 32, "size": 32}}


def tiny_params(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": "vit-micro", "model_overrides": dict(TINY_MODEL), "data": dict(TINY_DATA),
        "steps": 12, "batch_size": 16, "lr": 1e-3, "warmup_steps": 2, "log_every": 1, "threads": 1,
    }
    params.update(overrides)
    return params


def tiny_recipe(data: dict[str, int], params: dict[str, Any], **top: Any) -> str:
    """A recipe TOML (kind train, seed 0) training the tiny ViT on the demo shapes: `data` sizes the generated set
    (n_train, n_val), `params` adds to the recipe's params, `top` adds top-level keys (e.g. name)."""
    import tomli_w

    sized = {**TINY_DATA, "params": {**TINY_DATA["params"], **data}}
    body = {"model": "vit-micro", "model_overrides": dict(TINY_MODEL), "threads": 1, "data": sized, **params}
    return tomli_w.dumps({"kind": "train", **top, "seed": 0, "params": body})


def make_tiny_job(out_dir: Path | str, seed: int = 0, resume: bool = False, kind: str = "train",
                  **overrides: Any) -> JobSpec:
    return JobSpec(kind, tiny_params(**overrides), out_dir=str(out_dir), name="tiny", seed=seed, resume=resume)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: on a shared, loaded machine OpenMP spin-waits make 2 threads many times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny_job():
    """A factory: tiny_job(out_dir, seed=0, resume=False, kind="train", **param_overrides) → JobSpec."""
    return make_tiny_job
