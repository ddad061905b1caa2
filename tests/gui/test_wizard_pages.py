"""Wizard pages without a training run: the task list, leakage refused on the Data page, the starting point, the
recipe's problems and estimate, and the main window's "New model…" action (closing during a run asks, then
cancels and joins the worker)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from app.core.manifest import model_roots
from app.core.plugin_api import API_VERSION, PluginInfo, TrainTask
from app.core.registry import discover
from app.core.zoo import Zoo


def leaky_dataset(seed: int, n_train: int = 16, n_val: int = 8, size: int = 16):
    """A simulator with a bug: its validation images repeat training images."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train, 3, size, size)).astype(np.float32)
    y = np.arange(n_train) % 2
    return x, y, x[:n_val].copy(), y[:n_val]


LEAKY = TrainTask(id="test.leaky", title="Leaky test task", plugin="leaky",
                  data_entry="test_wizard_pages:leaky_dataset", data_params={"n_train": 16, "n_val": 8, "size": 16},
                  image_size_param="size")
LEAKY_PLUGIN = SimpleNamespace(info=PluginInfo(id="leaky", name="Leaky", version="0", api_version=API_VERSION,
                                               train_tasks=(LEAKY,)))


@pytest.fixture
def wizard(qtbot, tmp_path):
    from app.gui.dispatch import Dispatcher
    from app.gui.jobs_qt import JobsModel
    from app.gui.wizard import TrainingWizard

    zoo = Zoo([*model_roots(), tmp_path / "user"], install_root=tmp_path / "user")
    dispatch = Dispatcher()
    jobs = JobsModel(dispatch)

    def make(plugins=None):
        w = TrainingWizard(plugins if plugins is not None else discover(use_entry_points=False).plugins, zoo, jobs,
                           confirm_close=False)
        qtbot.addWidget(w)
        w.show()
        return w

    yield make
    jobs.cancel_all_and_join(10)
    dispatch.close()


def test_task_page_lists_plugin_tasks(wizard):
    w = wizard(discover(use_entry_points=False).plugins + [LEAKY_PLUGIN])
    ids = [w.task_page.list.item(i).data(256) for i in range(w.task_page.list.count())]
    assert "demo.shapes" in ids and "test.leaky" in ids
    w.task_page.select("demo.shapes")
    assert w.spec.task.id == "demo.shapes" and w.spec.model_id == "demo-shapes-custom"
    assert w.spec.out_dir.endswith("wizard-demo-shapes-custom")


def test_data_page_refuses_leakage(qtbot, wizard):
    w = wizard([LEAKY_PLUGIN])
    w.task_page.select("test.leaky")
    w.go("data")
    page = w.data_page
    qtbot.waitUntil(lambda: page.summary is not None or "refused" in page.verdict.text(), timeout=20_000)
    assert page.summary.leaks == 8
    assert "refused" in page.verdict.text() and "leakage" in page.verdict.text()
    assert not page.isComplete()
    w.next()
    assert w.currentPage() is page  # cannot go on


def test_data_page_shows_counts_and_thumbnails(qtbot, wizard):
    w = wizard()
    w.task_page.select("demo.shapes")
    w.go("data")
    page = w.data_page
    page.n_train.setValue(40)
    page.n_val.setValue(12)
    page.preview()
    qtbot.waitUntil(page.isComplete, timeout=20_000)
    assert "40 training + 12 validation" in page.info.text()
    assert page.thumb_grid.count() == 32  # 16 pictures + 16 captions
    assert "no identical content" in page.verdict.text()
    page.folder.setChecked(True)
    assert not page.isComplete() and page.path.isEnabled()


def _past_small_data(qtbot, w, page: str, n_train: int = 40, n_val: int = 12, **spec):
    """`w` with demo.shapes on `n_train` + `n_val` simulated samples (`spec`: image_size, start overrides), checked
    on the data page, then on `page`."""
    w.task_page.select("demo.shapes")
    w.spec.data.n_train, w.spec.data.n_val = n_train, n_val
    if "image_size" in spec:
        w.spec.data.image_size = spec["image_size"]
    if "overrides" in spec:
        w.spec.start.overrides = spec["overrides"]
    w.go("data")
    qtbot.waitUntil(w.data_page.isComplete, timeout=20_000)
    w.go(page)
    return w


def test_start_page_zoo_model_without_checkpoint_is_only_a_reference(qtbot, wizard):
    w = _past_small_data(qtbot, wizard(), "start")
    page = w.start_page
    assert page.models.count() >= 1 and page.isComplete()
    page.zoo.setChecked(True)
    assert w.spec.start.model_id == "demo-shapes-vit" and not w.spec.start.has_checkpoint
    assert not page.isComplete() and "no torch checkpoint" in page.problems.text()
    page.new.setChecked(True)
    page.width.setValue(36)
    page.heads.setValue(5)
    assert not page.isComplete()
    page.heads.setValue(4)
    assert page.isComplete() and "≈" in page.params.text()


def test_recipe_page_problems_estimate_and_budget(qtbot, wizard, tmp_path):
    w = _past_small_data(qtbot, wizard(), "recipe")
    page = w.recipe_page
    page.out_dir.setText(str(tmp_path / "out"))
    assert page.isComplete(), w.spec.problems()
    assert "Estimated time to finish" in page.eta.text() and "history" in page.eta.text()
    page.depth.setCurrentIndex(1)  # 4 → 2 blocks
    page.quant.setCurrentIndex(page.quant.findData("w4a4-repq"))
    assert w.spec.recipe.reparam_depth == 2 and w.spec.recipe.distill == "kd" and page.isComplete()
    w.spec.recipe.seconds_per_step = 1.0
    w.spec.recipe.measured_cost = 0.0
    page.budget.setValue(1)  # one minute
    assert "the budget allows" in page.eta.text()
    page.model_id.setText("")
    assert not page.isComplete() and "model id" in page.problems.text()


def test_main_window_opens_the_wizard(make_window, qtbot):
    win = make_window()
    actions = {a.text(): a for a in win.menuBar().actions()[0].menu().actions()}
    assert "&New model…" in actions
    actions["&New model…"].trigger()
    assert win.wizard is not None and win.wizard.isVisible()
    assert any(t.id == "demo.shapes" for t in win.wizard.tasks)
    assert win.wizard.jobs is win.jobs  # its runs appear in the jobs panel and are joined on close


def test_closing_the_main_window_during_a_run_asks_then_cancels(make_window, qtbot, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    win = make_window(confirm_close=True)
    wiz = win.open_wizard()
    wiz.task_page.select("demo.shapes")
    spec = wiz.spec
    spec.data.n_train, spec.data.n_val, spec.data.image_size = 64, 16, 32
    spec.start.overrides = {"depth": 1, "width": 32, "heads": 2}
    spec.recipe.steps, spec.recipe.batch_size, spec.recipe.threads = 5000, 16, 1
    spec.out_dir = str(tmp_path / "run")
    assert wiz.run_page.start()
    qtbot.waitUntil(lambda: len(wiz.run_page.loss[0]) >= 1, timeout=120_000)
    asked = []

    def answer(*args, **kw):
        asked.append(args[1:3])
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    win.close()
    assert [title for title, _ in asked] == ["Jobs are running"]
    text = asked[0][1]  # what it promises about the checkpoint ...
    assert "keeps its checkpoint" in text and f"vitascope train {tmp_path / 'run' / 'recipe.toml'} --resume" in text
    job = wiz.run_page.job
    assert not job.running  # cancelled and joined
    assert (tmp_path / "run" / "ckpt_last.pt").is_file()  # ... is true


def test_measured_speed_feeds_the_estimate_and_is_remembered(qtbot, wizard, tmp_path):
    """Measure speed runs a few real steps in a worker; the speed (timed after warm-up, like the jobs panel's ETA)
    replaces the rough history basis, and the next wizard for the task starts from it."""
    pytest.importorskip("torch")
    from app.core.wizard_spec import STARTUP_S
    from app.gui.wizard.speed_memory import recall

    tiny = {"image_size": 32, "overrides": {"depth": 1, "width": 32, "heads": 2}}
    w = _past_small_data(qtbot, wizard(), "recipe", 64, 16, **tiny)
    page = w.recipe_page
    page.batch.setValue(16)
    page.threads.setValue(1)
    page.out_dir.setText(str(tmp_path / "out"))
    assert "rough" in page.eta.text() and "Measure speed" in page.eta.text()
    page.measure_speed()
    qtbot.waitUntil(lambda: page.measure.isEnabled(), timeout=120_000)
    sps = w.spec.recipe.seconds_per_step
    assert sps > 0 and "measured on this computer" in page.eta.text(), page.eta.text()
    seconds, _ = w.spec.estimate()
    assert seconds == pytest.approx(STARTUP_S + w.spec.effective_steps() * sps, rel=1e-6)
    m = recall("demo.shapes")
    assert m is not None and m.seconds_per_step == sps and m.source == "measurement"

    again = _past_small_data(qtbot, wizard(), "recipe", 64, 16, **tiny)
    again.recipe_page.threads.setValue(1)
    again.recipe_page.batch.setValue(16)
    assert again.spec.recipe.seconds_per_step == sps
    assert "measured on this computer (a speed measurement" in again.recipe_page.eta.text()
