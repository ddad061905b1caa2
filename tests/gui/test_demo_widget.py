"""The demo widget: live results through the Qt host, no-model message, model hot-plug, file classification."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.core.manifest import by_id, model_roots
from app.core.zoo import Zoo
from plugins.demo.widget import DemoWidget

INITIAL = "—"


def _widget(window) -> DemoWidget:
    return next(t.widget for t in window.plugin_tabs if t.id == "demo")


def test_stream_delivers_results_with_a_model(make_window, zoo, add_model, qtbot):
    add_model()
    w = _widget(make_window(zoo=zoo))
    assert w.label.text() == INITIAL and w.model_combo.currentText() == "tiny-shapes"
    w.start_demo()
    qtbot.waitUntil(lambda: w.label.text() in ("circle", "square", "triangle", "cross"), timeout=5000)
    qtbot.waitUntil(lambda: w.results >= 3, timeout=5000)
    w.tick()
    assert "fps" in w.stats_label.text() and "dropped" in w.stats_label.text()
    assert not w.start_button.isEnabled() and w.stop_button.isEnabled()
    assert sum(bar.value() for bar in w.bars.bars.values()) == pytest.approx(1000, abs=5)
    w.stop()
    assert not w.stream.running and w.start_button.isEnabled()


def test_no_model_is_a_clear_message_and_a_new_model_is_picked_up(make_window, zoo, add_model, tmp_path,
                                                                   qtbot):
    w = _widget(make_window(zoo=zoo))
    assert not w.model_combo.isEnabled() and "No demo model is installed" in w.message.text()
    w.start_demo()
    qtbot.waitUntil(lambda: w.label.text() == "(not classified)", timeout=5000)
    assert w.stream.running
    zoo.install(add_model("late-model", root=tmp_path / "src"))  # as Model zoo → Install… would
    qtbot.waitUntil(lambda: w.model_combo.currentText() == "late-model", timeout=5000)
    qtbot.waitUntil(lambda: w.label.text() in ("circle", "square", "triangle", "cross"), timeout=5000)
    assert not w.message.isVisible()


def test_classify_file_runs_as_a_job(make_window, zoo, add_model, tmp_path, qtbot):
    add_model()
    window = make_window(zoo=zoo)
    w = _widget(window)
    img = np.zeros((80, 100, 3), np.uint8)
    img[..., 2] = 255
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), img)
    w.classify_file(path)
    qtbot.waitUntil(lambda: "→" in w.file_label.text(), timeout=5000)
    assert w.label.text() != INITIAL
    assert [r.state for r in window.jobs.records if r.name.startswith("classify")][-1:] == ["finished"]
    w.classify_file(tmp_path / "missing.png")
    qtbot.waitUntil(lambda: "no such file" in w.file_label.text(), timeout=5000)


REAL = by_id("demo").folder / "models" / "demo-shapes-vit"


@pytest.mark.skipif(not ((REAL / "card.toml").is_file() and (REAL / "model.onnx").is_file()),
                    reason="plugins/demo/models/demo-shapes-vit is not there yet (trained by its recipe)")
def test_real_demo_model_classifies_the_live_stream(make_window, qtbot):
    from plugins.demo.shapes import LABELS

    w = _widget(make_window(zoo=Zoo(model_roots())))
    assert w.model_combo.currentText() == "demo-shapes-vit"
    w.start_demo()
    qtbot.waitUntil(lambda: w.label.text() in LABELS, timeout=10000)
    assert w.stream.stats.error is None
