"""The retrieval widget in a real Qt window: index with progress, cancel and resume, query by file and by
"find similar", threshold, re-ID borders, near-duplicate groups and CSV export."""

from __future__ import annotations

import csv
import shutil

import pytest

pytest.importorskip("pytestqt")


@pytest.fixture
def headless_host(isolated_settings, tmp_path):
    """A HeadlessHost with no models, shut down after the widgets on it (fixtures tear down in reverse)."""
    from app.core.host import HeadlessHost
    from app.core.zoo import Zoo

    host = HeadlessHost(Zoo(roots=[tmp_path / "no-models"]), home=tmp_path)
    yield host
    host.shutdown()


@pytest.fixture
def make_widget(headless_host, show_widget):
    """The widget on a HeadlessHost: its job callbacks arrive on the host's own thread and the SDK brings them to
    the Qt thread (the GUI tests cover the QtHost)."""
    from plugins.retrieval.engine import RetrievalEngine
    from plugins.retrieval.widget import RetrievalWidget

    def make():
        return show_widget(RetrievalWidget(headless_host, RetrievalEngine(headless_host)), 1200, 760)

    return make


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    from plugins.retrieval.synthetic import write_market_layout

    return write_market_layout(tmp_path_factory.mktemp("syn") / "m", n_ids=10, seed=5, views=4)


def test_index_query_threshold_borders_duplicates_csv(make_widget, qtbot, tmp_path, market):
    w = make_widget()
    assert w.model_box.currentText() == "colour-hist"  # no model installed: the baselines are offered
    gallery = tmp_path / "gallery"
    shutil.copytree(market / "bounding_box_test", gallery)
    dup = sorted(gallery.iterdir())[0]
    shutil.copy(dup, gallery / "copy_of_first.png")
    w.add_folder(str(gallery))
    w.start_index()
    qtbot.waitUntil(lambda: not w.job_running("index"), timeout=30000)
    assert "31 images indexed" in w.status.text()
    assert w.controls.progress.value() == w.controls.progress.maximum() > 0
    query = sorted((market / "query").iterdir())[0]
    w.query_file(str(query))
    assert w.grid.count() == min(24, 31)
    scores = [h.score for h in w.hits]
    assert scores == sorted(scores, reverse=True)
    w.thr.setValue((scores[3] + scores[8]) / 2)  # the threshold hides weaker results
    kept = sum(s >= w.thr.value() for s in scores)
    assert 4 <= kept <= 8 and w.grid.count() == kept and "hidden" in w.status.text()
    out = tmp_path / "r.csv"
    assert w.export_csv(out) == kept
    rows = list(csv.DictReader(out.open()))
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, kept + 1)] and rows[0]["query"] == str(query)
    w.thr.setValue(0.0)
    w.reid.setChecked(True)
    assert w._label(w.hits[0].file) in {w._label(str(query)), w._label(w.hits[0].file)}
    first = w.grid.item(0).data(0x0100)
    w.query_file(first)  # "find similar" on a result: it ranks itself first
    assert w.hits[0].file == first and w.hits[0].score == pytest.approx(1.0, abs=1e-4)
    w.show_duplicates()
    names = {w.grid.item(i).data(0x0100).split("/")[-1] for i in range(w.grid.count())}
    assert {dup.name, "copy_of_first.png"} <= names


def test_cancel_keeps_work_and_resume_finishes(make_widget, qtbot, tmp_path):
    from plugins.retrieval.synthetic import write_market_layout

    root = write_market_layout(tmp_path / "big", n_ids=60, seed=9, views=5)
    w = make_widget()
    w.add_folder(str(root))
    w.start_index()
    w.cancel_index()
    qtbot.waitUntil(lambda: not w.job_running("index"), timeout=30000)
    assert "cancel" in w.status.text().lower()
    w.start_index()
    qtbot.waitUntil(lambda: not w.job_running("index"), timeout=60000)
    assert "300 images indexed" in w.status.text()
