"""The ECG review tab with the real engine and the shipped model: the demo ECGs load on first run, Screen all
runs on a job, the viewer shows the heat map and measurements, and a confirmed read lands in the audit log
with the model's id and sha256."""

from __future__ import annotations

from pathlib import Path

from plugins.ecg.types import CLASSES


def test_review_flow_with_the_shipped_model(isolated_settings, tmp_path, qtbot):
    from app.core.manifest import model_roots
    from app.core.zoo import Zoo
    from app.gui.dispatch import Dispatcher
    from app.gui.host import QtHost
    from app.gui.jobs_qt import JobsModel
    from plugins.ecg.engine import EcgEngine
    from plugins.ecg.widget import EcgWidget

    host = QtHost("ecg", Zoo(roots=model_roots()), JobsModel(Dispatcher()), home=tmp_path)
    engine = EcgEngine(host)
    w = EcgWidget(host, engine)
    qtbot.addWidget(w)
    w.resize(1300, 800)
    w.show()
    qtbot.waitUntil(lambda: w.worklist is not None and len(w.worklist) == 4, timeout=30_000)
    assert w.model_info is not None and w.model_info[0] == "ecg-screen-vit"
    w.screen_all()
    qtbot.waitUntil(lambda: all(it.status == "screened" for it in w.worklist.items()), timeout=60_000)
    items = w.worklist.items()
    assert all(it.label in CLASSES and it.model_id == "ecg-screen-vit" for it in items)
    record = next(it for it in items if Path(it.path).suffix == ".hea")
    assert 40 < record.measurements["HR"] < 150
    assert w.select_item(record.id)
    qtbot.waitUntil(lambda: w.heatmap_check.isEnabled(), timeout=10_000)
    w.heatmap_check.setChecked(True)
    qtbot.waitUntil(lambda: w.heatmap_shown, timeout=5_000)
    w.reviewer_edit.setText("Dr. Test")
    assert w.confirm()
    rows = w.worklist.audit(item_id=record.id, decisions_only=True)
    assert rows and rows[-1].action == "confirm" and rows[-1].reviewer == "Dr. Test"
    assert rows[-1].model_sha256 == engine.model_info()[1] and rows[-1].shown["heatmap"] is True
    assert w.worklist.verify_audit()
    w.shutdown()
