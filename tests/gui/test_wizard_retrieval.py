"""The training wizard's retrieval task through its pages: labelled class folders → the DCAL parent from the zoo
(it ships a checkpoint) → fine-tune in a worker process → Evaluate against the parent on the held-out classes →
Install; the retrieval plug-in's host sees the new model at once."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from app.core.host import HeadlessHost  # noqa: E402
from app.core.registry import discover  # noqa: E402
from app.core.zoo import Zoo  # noqa: E402
from tests.train.test_dcal_finetune import write_classes, write_parent  # noqa: E402

WORKER_TIMEOUT_MS = 300_000  # a worker process: torch import, training, export and evaluation on a shared machine


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from app.gui.dispatch import Dispatcher
    from app.gui.jobs_qt import JobsModel

    write_parent(tmp_path / "shipped" / "tiny-dcal-parent")
    installed = tmp_path / "user-models"
    zoo = Zoo([tmp_path / "shipped", installed], install_root=installed)
    dispatch = Dispatcher()
    jobs = JobsModel(dispatch)
    yield zoo, jobs
    jobs.cancel_all_and_join(20)
    dispatch.close()


@pytest.mark.slow  # fine-tunes, exports and evaluates in a worker process
def test_retrieval_task_fine_tunes_evaluates_and_installs(qtbot, env, tmp_path):
    from app.gui.wizard import TrainingWizard

    zoo, jobs = env
    data = write_classes(tmp_path / "specimens", n_classes=8, views=4)
    host = HeadlessHost(zoo)
    wiz = TrainingWizard(discover(use_entry_points=False).plugins, zoo, jobs, confirm_close=False)
    qtbot.addWidget(wiz)
    wiz.show()
    wiz.task_page.select("retrieval.embed")
    wiz.go("data")
    dp = wiz.data_page
    dp.folder.setChecked(True)
    dp.path.setText(str(data))
    dp.val_fraction.setValue(0.25)
    dp.preview()
    qtbot.waitUntil(dp.isComplete, timeout=30_000)
    assert (dp.summary.n_train, dp.summary.n_val) == (24, 8)  # 6 classes trained on, 2 held out
    wiz.go("start")
    sp = wiz.start_page
    assert sp.zoo.isChecked() and sp.isComplete()  # the task fine-tunes: the zoo parent is the start
    sp.new.setChecked(True)
    assert not sp.isComplete() and "fine-tunes a model from the zoo" in sp.problems.text()
    sp.zoo.setChecked(True)
    wiz.go("recipe")
    rp = wiz.recipe_page
    rp.steps.setValue(4)
    rp.batch.setValue(16)
    rp.threads.setValue(1)
    rp.model_id.setText("specimens-dcal")
    rp.out_dir.setText(str(tmp_path / "run"))
    assert rp.isComplete(), wiz.spec.problems()
    assert wiz.spec.to_job().kind == "app.train.dcal_finetune:run"

    wiz.go("run")
    run = wiz.run_page
    qtbot.waitUntil(lambda: not run.running, timeout=WORKER_TIMEOUT_MS)
    assert run.outcome == "finished", run.status.text() + run.log.toPlainText()[-2000:]
    assert len(run.loss[0]) >= 1 and "recall_at_1" in run.metric

    wiz.go("evaluate")
    ev = wiz.evaluate_page
    qtbot.waitUntil(ev.isComplete, timeout=60_000)
    assert not ev.error, ev.error
    assert [(r.role, r.metric) for r in ev.rows] == [("new", "recall_at_1"), ("parent", "recall_at_1")]
    assert ev.rows[1].model_id == "tiny-dcal-parent" and ev.rows[0].n == ev.rows[1].n == 8
    assert ev.rows[0].value == pytest.approx(run.final_values["recall_at_1"], abs=1e-6)

    wiz.go("install")
    card = wiz.install_page.install()
    assert card is not None, wiz.install_page.status.text()
    assert "specimens-dcal" in [c.id for c in host.models("retrieval.embed")]
    assert card.artifact("checkpoint") is not None and card.section("comparison")["parent"]["id"] == "tiny-dcal-parent"
