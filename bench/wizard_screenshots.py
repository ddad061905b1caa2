"""Screenshots of every training-wizard page in a real window (run under Xvfb: `xvfb-run -a .venv/bin/python
bench/wizard_screenshots.py`), driving a small demo-shapes run to the end. Writes
resources/screenshots/wizard-<page>.png."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shots import SHOTS, application, isolated_home, pump


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(SHOTS))
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = isolated_home("wizard-shots", config=False)

    import pyqtgraph as pg

    from app.core.manifest import model_roots
    from app.core.registry import discover
    from app.core.zoo import Zoo
    from app.gui.dispatch import Dispatcher
    from app.gui.jobs_qt import JobsModel
    from app.gui.theme import apply_theme
    from app.gui.wizard import TrainingWizard

    pg.setConfigOptions(imageAxisOrder="row-major")
    app = application()
    apply_theme(app, "light")
    zoo = Zoo([*model_roots(), tmp / "models"], install_root=tmp / "models")
    dispatch = Dispatcher()
    jobs = JobsModel(dispatch)
    wiz = TrainingWizard(discover(use_entry_points=False).plugins, zoo, jobs, confirm_close=False)
    wiz.show()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def wait(seconds: float = 0.0, until=None, timeout: float = 180.0) -> None:
        pump(seconds, until, timeout, what="the page")

    def shot(name: str) -> None:
        wait(0.3)
        path = out / f"wizard-{name}.png"
        wiz.grab().save(str(path))
        print(f"{path}")

    wiz.task_page.select("demo.shapes")
    shot("1-task")
    wiz.go("data")
    dp = wiz.data_page
    dp.n_train.setValue(1024)
    dp.n_val.setValue(128)
    dp.size.setValue(32)
    dp.preview()
    wait(until=dp.isComplete)
    shot("2-data")
    wiz.go("start")
    wiz.start_page.depth.setValue(2)
    wiz.start_page.width.setValue(48)
    wiz.start_page.heads.setValue(3)
    shot("3-start")
    wiz.go("recipe")
    rp = wiz.recipe_page
    rp.steps.setValue(args.steps)
    rp.batch.setValue(32)
    rp.threads.setValue(1)
    rp.model_id.setText("shapes-wizard-demo")
    rp.out_dir.setText(str(tmp / "run"))
    rp.measure_speed()
    wait(until=lambda: rp.measure.isEnabled())
    shot("4-recipe")
    wiz.go("run")
    run = wiz.run_page
    wait(until=lambda: len(run.loss[0]) > args.steps // 6 // max(1, min(50, args.steps // 100)))
    shot("5-run-live")
    wait(until=lambda: not run.running)
    shot("5-run")
    wiz.go("evaluate")
    wait(until=wiz.evaluate_page.isComplete)
    shot("6-evaluate")
    wiz.go("install")
    wiz.install_page.install()
    shot("7-install")
    jobs.cancel_all_and_join(10)
    dispatch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
