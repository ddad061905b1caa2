"""The retrieval widget's re-ID view: evaluating a labelled `folders` layout plots the engine's CMC curve (rank 1..20,
mAP in the title); the plot is reached with the keyboard and fits a 1024×700 widget."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from PySide6.QtCore import QPoint, Qt

from app.core.host import HeadlessHost
from app.core.zoo import Zoo
from plugins.retrieval.embedders import baseline
from plugins.retrieval.engine import RetrievalEngine, evaluate
from plugins.retrieval.layouts import read_layout
from plugins.retrieval.synthetic import make_split
from plugins.retrieval.widget import RetrievalWidget


@pytest.fixture
def folders(tmp_path) -> Path:
    """A tiny `folders` layout: 6 synthetic identities × 4 views, one sub-folder each."""
    x, y, _ = make_split(6, 4, 21, 48)
    root = tmp_path / "folders"
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        d = root / f"id{int(label)}"
        d.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(d / f"{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


@pytest.fixture
def widget(tmp_path, show_widget):
    host = HeadlessHost(Zoo(roots=[tmp_path / "no-models"]), home=tmp_path)
    w = show_widget(RetrievalWidget(host, RetrievalEngine(host)), 1024, 700)
    yield w
    w.shutdown()
    host.shutdown()


def test_evaluation_plots_the_engines_cmc_curve(widget, folders, qtbot):
    w = widget
    assert w.cmc.values == [] and "evaluate" in w.cmc.title
    w.evaluate_folder(folders)
    qtbot.waitUntil(lambda: w.evaluation is not None and not w.job_running("evaluate"), timeout=20000)
    ref = evaluate(read_layout(folders), baseline(w.model_box.currentText()))
    assert ref.queries == 24 and len(ref.curve) >= 20
    assert w.cmc.values == pytest.approx(ref.curve[:20], abs=1e-9) and len(w.cmc.values) == 20
    assert w.cmc.map == pytest.approx(ref.map, abs=1e-9)
    assert f"mAP {ref.map:.3f}" in w.cmc.title and f"rank 1: {ref.cmc['1']:.3f}" in w.cmc.accessibleDescription()
    assert f"mAP {ref.map:.3f}" in w.status.text()
    assert w.eval_btn.isEnabled()


def test_bad_folder_says_so_in_one_line(widget, tmp_path, qtbot):
    (tmp_path / "empty").mkdir()
    widget.evaluate_folder(tmp_path / "empty")
    qtbot.waitUntil(lambda: not widget.job_running("evaluate"), timeout=10000)
    assert widget.status.text().startswith("Evaluation failed:") and "\n" not in widget.status.text()
    assert widget.cmc.values == []


def test_plot_is_reached_and_read_with_the_keyboard_and_fits(widget, folders, qtbot):
    w = widget
    w.evaluate_folder(folders)
    qtbot.waitUntil(lambda: w.evaluation is not None and not w.job_running("evaluate"), timeout=20000)
    chain, nxt = [], w.eval_btn.nextInFocusChain()
    while nxt is not w.eval_btn and len(chain) < 200:  # the Tab order from the Evaluate button on
        chain.append(nxt)
        nxt = nxt.nextInFocusChain()
    assert w.cmc in chain and w.cmc.focusPolicy() & Qt.FocusPolicy.TabFocus
    w.cmc.setFocus()
    qtbot.keyClick(w.cmc, Qt.Key.Key_Right)
    qtbot.keyClick(w.cmc, Qt.Key.Key_Right)
    assert w.cmc.marker == 2
    qtbot.keyClick(w.cmc, Qt.Key.Key_End)
    assert w.cmc.marker == 19
    for child in (w.cmc, w.eval_btn, w.grid):  # visible, of a usable size, inside the 1024×700 widget
        top_left = child.mapTo(w, QPoint(0, 0))
        assert child.isVisible() and child.width() >= 200 or child is w.eval_btn
        assert top_left.x() >= 0 and top_left.y() >= 0
        assert top_left.x() + child.width() <= w.width() and top_left.y() + child.height() <= w.height()
    assert w.cmc.height() >= w.cmc.minimumHeight() >= 150
    assert w.eval_btn.width() >= w.eval_btn.sizeHint().width()  # its text is not cut
    image = w.cmc.grab().toImage()
    assert image.width() == w.cmc.width() and not image.isNull()
