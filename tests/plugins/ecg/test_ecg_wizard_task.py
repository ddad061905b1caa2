"""The ECG plug-in offers its screening task to the training wizard, and the wizard's data summary can show it."""

from __future__ import annotations

import tomllib
from pathlib import Path

from app.core.wizard_data import summarize
from app.core.wizard_spec import available_tasks, load_task_recipe
from app.train.loop import resolve_entry
from plugins.ecg import plugin
from plugins.ecg.types import CLASSES

REPO = Path(__file__).resolve().parents[3]


def test_ecg_task_is_offered_with_its_recipe(tmp_path):
    (task,) = [t for t in available_tasks([plugin]) if t.id == "ecg.screen"]
    assert task.problem == "classification" and task.plugin == "ecg"
    recipe = load_task_recipe(task)
    assert recipe["params"]["data"]["entry"] == task.data_entry
    assert tomllib.loads((REPO / task.recipe).read_text())["params"]["export"]["task"] == "ecg.screen"
    params = {**task.data_params, task.count_param: 2, task.val_param: 1, "cache": str(tmp_path)}
    data = resolve_entry(task.data_entry)(seed=task.default_seed, **params)
    s = summarize(data, labels=list(CLASSES), problem=task.problem)
    assert s.n_train == 8 and s.n_val == 4 and s.leaks == 0
    assert s.shape[-2:] == tuple(task.data_params["size"]) and s.thumbnails
