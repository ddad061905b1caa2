"""The model-zoo browser: a readable card, broken and tampered models shown with their error, install, and the list
following the active tab's task."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.gui.zoo_browser import ZooBrowser


def _on_demo_tab(w) -> None:
    """The test models are demo.shapes models: show the demo tab, whose task they serve."""
    w.go_to_tab([t.id for t in w.plugin_tabs].index("demo"))


def test_card_is_shown_readably(make_window, zoo, add_model):
    folder = add_model("tiny-shapes")
    w = make_window(zoo=zoo)
    _on_demo_tab(w)
    b: ZooBrowser = w.zoo_browser
    assert [e.id for e in b.entries] == ["tiny-shapes"] and b.selected_id() == "tiny-shapes"
    text = b.card_text()
    sha = (folder / "card.toml").read_text().split('sha256 = "')[1][:64]
    for expected in ("demo.shapes", "1.2.0", "MIT", "image", "logits", "circle, square, triangle, cross",
                     "accuracy", "shapes-heldout", "seed 20241121", "Latency", "0.05", "Provenance",
                     "recipe", sha[:32], sha[32:]):
        assert expected in text, expected


def test_broken_and_tampered_models_show_errors(make_window, zoo, add_model, model_root, qtbot):
    tampered = add_model("tampered")
    with open(tampered / "model.onnx", "ab") as f:
        f.write(b"\0")
    broken = model_root / "broken"
    broken.mkdir()
    (broken / "card.toml").write_text("id = 'broken'\ntask = ", encoding="utf-8")
    w = make_window(zoo=zoo)
    _on_demo_tab(w)
    b = w.zoo_browser
    assert [e.id for e in b.entries] == ["broken", "tampered"]
    assert "broken" in b.list.item(0).text() and "1 broken" in b.count_label.text()
    b.list.setCurrentRow(0)
    assert "cannot be used" in b.card_text() and "not valid TOML" in b.card_text()
    assert not b.verify_button.isEnabled()
    b.select("tampered")
    qtbot.mouseClick(b.verify_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Verification failed" in b.card_text(), timeout=5000)
    assert "the card says" in b.card_text()
    # by name: other tabs' background jobs (the ECG demo import) may be added after it
    assert [r.state for r in w.jobs.records if r.name == "verify tampered"] == ["failed"]


def test_verify_ok_and_install(make_window, zoo, add_model, tmp_path, qtbot):
    add_model("tiny-shapes")
    src = add_model("new-model", root=tmp_path / "src")
    w = make_window(zoo=zoo)
    _on_demo_tab(w)
    b = w.zoo_browser
    b.verify_selected()
    qtbot.waitUntil(lambda: "Verified" in b.card_text(), timeout=5000)
    b.install(src)
    qtbot.waitUntil(lambda: "new-model" in [e.id for e in b.entries], timeout=30_000)  # a busy machine
    qtbot.waitUntil(lambda: b.selected_id() == "new-model" and "Installed from" in b.card_text(), timeout=3000)


def test_the_list_follows_the_active_tab(make_window, zoo, add_model):
    for model_id, task in (("shapes-a", "demo.shapes"), ("ecg-a", "ecg.screen"), ("ecg-b", "ecg.screen"),
                           ("holo-a", "holo.autofocus")):
        add_model(model_id, task)
    w = make_window(zoo=zoo)
    tabs = {t.id: i for i, t in enumerate(w.plugin_tabs)}
    tasks = {t.id: t.tasks for t in w.plugin_tabs}
    b = w.zoo_browser
    assert list(tabs)[-1] == "demo" and w.tabs.currentIndex() == 0  # first run: a domain plug-in, demo last
    for tab_id, expected in (("ecg", ["ecg-a", "ecg-b"]), ("holography", ["holo-a"]), ("demo", ["shapes-a"])):
        if not tasks[tab_id]:
            continue
        w.go_to_tab(tabs[tab_id])
        shown = [e.id for e in b.entries]
        assert shown == [m for m in expected if zoo.entry(m).card.task in tasks[tab_id]], tab_id
        assert b.selected_id() == shown[0] and "of 4 models" in b.count_label.full_text()
    w.all_models_action.trigger()  # Models → Show all models
    assert b.all_box.isChecked() and len(b.entries) == 4
    assert b.selected_id() == "shapes-a"  # the selection stays
