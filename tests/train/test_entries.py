"""Entry points named by specs and recipes resolve in one place (app.core.entries.resolve_entry): registered
entries load, anything else is refused before it is imported, whichever trainer asks."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from app.core.entries import resolve_entry
from app.core.errors import BadInput, JobError


def test_a_registered_entry_resolves_and_an_unregistered_one_is_refused_unimported():
    fn = resolve_entry("plugins.demo.shapes:make_dataset")
    x, y, _, _ = fn(seed=0, n_train=4, n_val=2, size=32)
    assert x.ndim == 4 and len(x) == len(y) == 4 and x.shape[-1] == 32
    sys.modules.pop("json.tool", None)
    with pytest.raises(JobError, match="not registered"):
        resolve_entry("json.tool:main")
    assert "json.tool" not in sys.modules
    with pytest.raises(BadInput, match="package.module:function"):
        resolve_entry("no-colon", error=BadInput)


def test_the_retrieval_trainer_resolves_its_synthetic_entry_through_the_allowlist(tmp_path):
    pytest.importorskip("torch")
    from app.train import dcal_train

    data = {"synthetic": {"entry": "plugins.retrieval.synthetic:make_split", "n_ids": 3, "views": 2, "seed": 0}}
    x, y, real = dcal_train.load_data(data, 32, tmp_path)
    assert len(x) == len(y) == len(real) and set(np.unique(y)) == {0, 1, 2}
    bad = {"synthetic": {"entry": "os:getcwd", "n_ids": 3, "views": 2, "seed": 0}}
    with pytest.raises(JobError, match="not registered"):
        dcal_train.load_data(bad, 32, tmp_path)
