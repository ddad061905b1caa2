"""Screenshots of the training wizard's "Compress a CLIP model" task in a real window, run to the end on captioned
photos (default: the shared COCO captions; read here for the run only, nothing of them ships). Run under Xvfb:

    xvfb-run -a .venv/bin/python bench/wizard_clip_screenshots.py --teacher TEACHER.pt --steps 300

Writes resources/screenshots/wizard-clip-<page>.png and prints the student's and the teacher's scores."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from shots import ROOT, SHOTS, application, isolated_home, pump

COCO = ROOT.parent / "shared" / "data" / "clip" / "coco"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--teacher", required=True, help="an open_clip / TinyCLIP checkpoint (.pt)")
    ap.add_argument("--captions", default=str(COCO / "captions_train.json"))
    ap.add_argument("--images", default=str(COCO / "images"))
    ap.add_argument("--val-captions", default=str(COCO / "captions_val.json"))
    ap.add_argument("--val-images", default="", help="default: the training images folder")
    ap.add_argument("--preset", default="half")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", default=str(SHOTS))
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    tmp = isolated_home("wizard-clip-shots", config=False)

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

    def shot(name: str) -> None:
        pump(0.3)
        path = out / f"wizard-clip-{name}.png"
        wiz.grab().save(str(path))
        print(path, flush=True)

    wiz.task_page.select("textsearch.clip")
    shot("1-task")
    wiz.go("clip")
    page = wiz.clip_page
    page.teacher.setText(args.teacher)
    page.captions.setText(args.captions)
    page.images.setText(args.images)
    page.val_captions.setText(args.val_captions)
    page.val_images.setText(args.val_images)
    page.preset.setCurrentIndex(page.preset.findData(args.preset))
    page.steps.setValue(args.steps)
    page.batch.setValue(args.batch)
    page.model_id.setText("textsearch-clip-student")
    page.out_dir.setText(str(tmp / "run"))
    shot("2-inputs")
    if not page.isComplete():
        print("inputs incomplete:", wiz.spec.problems(), page.data_info.text(), file=sys.stderr)
        return 1
    wiz.go("run")
    run = wiz.run_page
    pump(until=lambda: len(run.loss[0]) >= 4, timeout=1800, what="the training curve")
    shot("3-run")
    pump(until=lambda: not run.running, timeout=3600, what="the run")
    if run.outcome != "finished":
        print("run ended:", run.outcome, run.status.text(), file=sys.stderr)
        return 1
    shot("4-finished")
    wiz.go("evaluate")
    pump(until=lambda: wiz.evaluate_page.isComplete(), what="the evaluation")
    shot("5-evaluate")
    wiz.go("install")
    wiz.install_page.install()
    shot("6-install")
    print(json.dumps({"values": run.final_values, "status": wiz.evaluate_page.status.text()}, indent=1))
    jobs.cancel_all_and_join(20)
    dispatch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
