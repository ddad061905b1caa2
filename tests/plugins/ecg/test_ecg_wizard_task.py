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


def test_your_own_labelled_ecg_folder_is_read_with_the_ecg_preprocessing(tmp_path):
    """The wizard's "folder" source for the ECG task reads one sub-folder per class as ECG model inputs (gray,
    letterboxed 256x352), with leakage-free folds: what a hospital fine-tunes on."""
    import cv2

    from app.core.wizard_spec import WizardSpec
    from plugins.ecg.render import render
    from plugins.ecg.waveform import simulate

    for c, label in enumerate(("normal", "abnormal_heartbeat", "myocardial_infarction", "history_of_mi")):
        (tmp_path / label).mkdir()
        for i in range(5):
            img = render(simulate(label, 100 * c + i), dpi=80, seed=i)
            cv2.imwrite(str(tmp_path / label / f"{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (task,) = [t for t in available_tasks([plugin]) if t.id == "ecg.screen"]
    spec = WizardSpec()
    spec.set_task(task)
    spec.data.source, spec.data.path, spec.data.val_fraction = "folder", str(tmp_path), 0.2
    table = spec.data_table()
    assert table["entry"] == "plugins.ecg.labelled:folder_dataset"
    xt, yt, xv, yv = resolve_entry(table["entry"])(seed=table["seed"], **table["params"])
    assert xt.shape[1:] == (1, 256, 352) and xv.shape[1:] == (1, 256, 352)
    assert len(xt) + len(xv) == 20 and 0 < len(xv) < 10
    assert set(yt.tolist()) == {0, 1, 2, 3}
    assert abs(float(xt.mean())) < 0.05  # per-image standardised like the model's input
