"""The text-search page with a real engine: lists the installed model, indexes a folder as a job, answers a
combined query with a scored thumbnail grid, applies the threshold and exports the results."""

from __future__ import annotations

import csv
import shutil

import pytest

from app.core.host import HeadlessHost
from app.core.zoo import Zoo

pytest.importorskip("pytestqt")


@pytest.fixture
def page(model_dir, tmp_path, monkeypatch, qtbot):
    home = tmp_path / "home"
    shutil.copytree(model_dir, home / "models" / "tiny-clip")
    other = home / "models" / "tiny-clip-b"
    shutil.copytree(model_dir, other)
    card = other / "card.toml"
    card.write_text(card.read_text().replace('id = "tiny-clip"', 'id = "tiny-clip-b"', 1))
    monkeypatch.setenv("VITASCOPE_HOME", str(home))
    from plugins.textsearch import plugin

    host = HeadlessHost(Zoo(roots=[home / "models"]), home=home)  # the engine lists the host's zoo
    engine = plugin.create_engine(host)
    widget = plugin.create_widget(host, engine)
    qtbot.addWidget(widget)
    yield widget
    widget.shutdown()
    host.shutdown()


def test_index_search_threshold_export(page, photos, tmp_path, qtbot):
    assert page.model_box.currentText() == "tiny-clip"
    page.start_index([str(photos)])
    qtbot.waitUntil(lambda: not page.job_running("index"), timeout=60_000)
    assert "6 images indexed" in page.status.text()
    page.query.setText(f'"2:a red square" + {photos / "blue.png"} - night')
    page.run_search()
    assert page.results.count() == 6 and not page.results.item(0).icon().isNull()
    scores = [r["score"] for r in page._last]
    assert scores == sorted(scores, reverse=True)
    assert page.results.item(0).text().startswith(f"{scores[0]:.3f}")
    cut = round(scores[1] - 0.0005, 3)  # keeps the first two (and any within 0.5e-3 of the second)
    page.threshold.setValue(cut)
    page.run_search()
    assert page.results.count() == sum(s >= cut for s in scores) >= 2
    assert all(r["score"] >= cut for r in page._last)
    out = tmp_path / "r.csv"
    page.export_csv(str(out))
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["rank", "file", "score", "query"] and len(rows) == page.results.count() + 1
    page.query.setText("+")
    page.run_search()
    assert "operator" in page.status.text() or "no terms" in page.status.text()


def test_switching_model_reembeds_in_background(page, photos, qtbot):
    from plugins.textsearch.index import index_base

    assert [page.model_box.itemText(i) for i in range(page.model_box.count())] == ["tiny-clip", "tiny-clip-b"]
    page.start_index([str(photos)])
    qtbot.waitUntil(lambda: not page.job_running("index"), timeout=60_000)
    assert not index_base(page.engine.db, "tiny-clip-b").with_name(
        index_base(page.engine.db, "tiny-clip-b").name + ".index.json").exists()
    page.model_box.setCurrentIndex(1)
    assert page.job_running("index")  # re-embedding started by the switch
    qtbot.waitUntil(lambda: not page.job_running("index"), timeout=60_000)
    assert "6 images indexed with tiny-clip-b" in page.status.text()
    page.query.setText("a red square")
    page.run_search()
    assert page.results.count() == 6
