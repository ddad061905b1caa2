"""The wizard's "Compress a CLIP model" task through its widgets: the task page leads to its own page of inputs
(teacher, captions, student size), bad captions are shown in one line and block Next, the run goes through a worker
process, the Evaluate page compares student and teacher from the job's scores, and Install puts the student in the
zoo under the text-search task."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from app.core.manifest import model_roots  # noqa: E402
from app.core.registry import discover  # noqa: E402
from app.core.zoo import Zoo  # noqa: E402
from app.train.clip_model import CLIP  # noqa: E402
from tests.train.test_clip_compress_job import TEACHER, save_scenes  # noqa: E402

WORKER_TIMEOUT_MS = 120_000


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    from app.gui.dispatch import Dispatcher
    from app.gui.jobs_qt import JobsModel

    installed = tmp_path / "user-models"
    zoo = Zoo([*model_roots(), installed], install_root=installed)
    dispatch = Dispatcher()
    jobs = JobsModel(dispatch)
    yield zoo, jobs
    jobs.cancel_all_and_join(20)
    dispatch.close()


def test_compress_a_clip_model_in_the_wizard(qtbot, env, tmp_path):
    from app.gui.wizard import TrainingWizard

    zoo, jobs = env
    torch.manual_seed(0)
    teacher = tmp_path / "teacher.pt"
    torch.save(CLIP(TEACHER).state_dict(), teacher)
    captions = save_scenes(tmp_path / "images", 24, 1, "train")
    val = save_scenes(tmp_path / "val", 8, 2, "val")

    wiz = TrainingWizard(discover(use_entry_points=False).plugins, zoo, jobs, confirm_close=False)
    qtbot.addWidget(wiz)
    wiz.show()
    wiz.task_page.select("demo.shapes")
    assert wiz.nextId() == wiz.page_id("data")  # the ViT tasks keep their pages
    wiz.task_page.select("textsearch.clip")
    assert wiz.nextId() == wiz.page_id("clip")
    wiz.go("clip")
    page = wiz.clip_page
    assert wiz.currentPage() is page and not page.isComplete()
    assert "teacher checkpoint" in page.problems.text()

    page.teacher.setText(str(teacher))
    page.images.setText(str(tmp_path / "images"))
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"image": "train000.png", "caption": "x"}, {"image": "gone.png", "caption": "y"}]))
    page.captions.setText(str(broken))
    assert "gone.png: no such image" in page.data_info.text() and not page.isComplete()
    page.captions.setText(str(captions))
    page.val_captions.setText(str(val))
    page.val_images.setText(str(tmp_path / "val"))
    assert "training: 24 images, 48 captions" in page.data_info.text() and "validation: 8 images" in \
        page.data_info.text()
    page.preset.setCurrentIndex(page.preset.findData("half"))
    page.steps.setValue(20)
    page.batch.setValue(8)
    page.threads.setValue(1)
    page.model_id.setText("clip-wizard-student")
    page.out_dir.setText(str(tmp_path / "run"))
    assert page.isComplete(), wiz.spec.problems()

    wiz.go("run")  # the Run page starts the worker
    run = wiz.run_page
    assert wiz.currentPage() is run and run.running
    qtbot.waitUntil(lambda: not run.running, timeout=WORKER_TIMEOUT_MS)
    assert run.outcome == "finished", run.status.text()
    assert len(run.loss[0]) >= 2 and run.model_dir == tmp_path / "run" / "model"

    wiz.go("evaluate")
    ev = wiz.evaluate_page
    assert [r.role for r in ev.rows] == ["new", "teacher"] and ev.isComplete()
    assert ev.table.item(1, 1).text() == "teacher" and ev.rows[0].params < ev.rows[1].params
    assert "t2i_R@10" in ev.status.text()

    wiz.go("install")
    card = wiz.install_page.install()
    assert card is not None and card.id == "clip-wizard-student" and card.task == "textsearch.clip"
    assert "clip-wizard-student" in [c.id for c in zoo.cards("textsearch.clip")]
    assert "clip-wizard-student" in wiz.install_page.status.text()
