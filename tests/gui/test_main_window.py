"""The main window: plug-in tabs, broken plug-ins, smoke run + screenshot, persisted settings, clean close."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.core.jobs import ProgressEvent
from app.core.registry import LoadError, Registry, discover
from app.gui.app import run_gui
from app.gui.theme import current_theme
from plugins.demo import plugin as demo_plugin


def test_builds_with_the_demo_tab(make_window):
    from plugins.demo.widget import DemoWidget

    w = make_window()
    ids = [t.id for t in w.plugin_tabs]
    assert {"holography", "ecg", "demo"} <= set(ids) and ids[-1] == "demo"  # the demo last
    demo = ids.index("demo")
    assert w.tabs.tabText(demo) == "Demo: shapes"
    assert isinstance(w.plugin_tabs[demo].widget, DemoWidget)
    assert w.problems == []
    assert w.zoo_dock.widget() is w.zoo_browser and w.jobs_dock.widget() is w.jobs_panel


def test_broken_plugin_is_listed_and_the_app_still_runs(make_window, qtbot):
    registry = discover(extra={"broken": "no.such.module:plugin"}, use_entry_points=False)
    w = make_window(registry)
    w.show()
    qtbot.waitUntil(lambda: w.problems_dialog is not None and w.problems_dialog.isVisible(), timeout=3000)
    assert not w.problems_dialog.isModal()
    assert ("broken", "no.such.module:plugin", "ModuleNotFoundError: No module named 'no'") in w.problems_dialog.rows()
    assert {"holography", "ecg", "demo"} <= {t.id for t in w.plugin_tabs}
    assert all(t.error is None for t in w.plugin_tabs)


class _WidgetFails:
    """A plug-in whose engine builds but whose widget raises."""

    info = type(demo_plugin.info)(id="bad", name="Bad widget", version="0", api_version=demo_plugin.info.api_version)

    def create_engine(self, host):
        return demo_plugin.create_engine(host)

    def create_widget(self, host, engine):
        raise RuntimeError("widget exploded")

    def add_cli(self, subparsers):
        pass


def test_plugin_whose_widget_fails_gets_an_error_tab(make_window, qtbot):
    api_mismatch = LoadError("old", "old.plugin:plugin", "speaks plug-in API 0, this Vitascope speaks 1")
    w = make_window(Registry([demo_plugin, _WidgetFails()], [api_mismatch]))
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["⚠ Bad widget", "Demo: shapes"]  # demo last
    bad = w.plugin_tabs[0]
    assert bad.widget is None and "widget exploded" in bad.error
    dialog = w.show_problems()
    messages = dialog.messages()
    assert any("API 0" in m for m in messages) and any("widget exploded" in m for m in messages)


class _NoLifecycle(_WidgetFails):
    """A plug-in whose widget is a bare QWidget: no start / stop / start_demo / shutdown."""

    info = type(demo_plugin.info)(id="bare", name="Bare widget", version="0",
                                  api_version=demo_plugin.info.api_version)

    def create_widget(self, host, engine):
        return QWidget()


class _Counting(_WidgetFails):
    """A plug-in whose widget counts the lifecycle calls the window makes."""

    info = type(demo_plugin.info)(id="counting", name="Counting", version="0",
                                  api_version=demo_plugin.info.api_version)

    def create_widget(self, host, engine):
        from app.gui.sdk import PluginWidgetBase

        class Counting(PluginWidgetBase):
            calls: list[str] = []

            def start(self) -> None:
                self.calls.append("start")

            def shutdown(self) -> None:
                self.calls.append("shutdown")
                super().shutdown()

        return Counting(host, engine)


def test_the_window_drives_the_widget_lifecycle(make_window, qtbot):
    w = make_window(Registry([_NoLifecycle(), _Counting()], []))
    bare, counting = w.plugin_tabs
    assert bare.widget is None and "lacks the widget lifecycle" in bare.error and "shutdown" in bare.error
    assert w.start_demos() == []
    assert counting.widget.calls == ["start"]  # start_demo() defaults to start()
    w.close()
    assert counting.widget.calls == ["start", "shutdown"] and counting.widget.closed


def _png_std(path: Path) -> float:
    img = cv2.imread(str(path))
    assert img is not None, f"{path} is not a readable PNG"
    assert img.shape[0] > 300 and img.shape[1] > 500
    return float(img.std())


def test_smoke_run_writes_a_screenshot(qapp, tmp_path, zoo, add_model):
    add_model()
    shot = tmp_path / "shots" / "smoke.png"
    code = run_gui(smoke=True, screenshot=str(shot), smoke_seconds=1.0,
                   registry=discover(use_entry_points=False), zoo=zoo)
    assert code == 0
    assert _png_std(shot) > 10  # not a blank window


def test_smoke_run_fails_when_the_screenshot_cannot_be_written(qapp, tmp_path, zoo):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = run_gui(smoke=True, screenshot=str(blocker / "shot.png"), smoke_seconds=0.2,
                   registry=discover(use_entry_points=False), zoo=zoo)
    assert code == 1


def test_theme_geometry_and_last_tab_persist(make_window):
    w1 = make_window(Registry([demo_plugin, _WidgetFails()], []))
    w1.show()
    w1.resize(1000, 700)
    w1.set_theme("dark")
    w1.tabs.setCurrentIndex(1)
    w1.close()
    try:
        QApplication.instance().setPalette(QApplication.style().standardPalette())
        w2 = make_window(Registry([demo_plugin, _WidgetFails()], []))
        w2.show()
        assert current_theme(QApplication.instance()) == "dark"
        assert w2.theme_actions["dark"].isChecked() and not w2.theme_actions["light"].isChecked()
        assert w2.tabs.currentIndex() == 1
        assert w2.height() == 700  # (restoreGeometry clamps the width to the 800-px offscreen screen)
    finally:
        w2.set_theme("light")


def _endless(token, emit):
    for i in range(100000):
        token.check()
        emit(ProgressEvent("progress", step=i, total=100000))
        time.sleep(0.01)


def test_close_with_a_running_job_cancels_and_joins_it(make_window, qtbot):
    w = make_window()
    w.show()
    handle = w.jobs.run_thread_job("endless", _endless)
    rec = w.jobs.records[-1]
    qtbot.waitUntil(lambda: (rec.step or 0) > 2, timeout=3000)
    t0 = time.monotonic()
    assert w.close()
    assert handle.done and time.monotonic() - t0 < 3
    assert rec.state == "cancelled"


def test_close_asks_when_jobs_run_and_no_keeps_the_window(make_window, qtbot, monkeypatch):
    w = make_window(confirm_close=True)
    w.show()
    handle = w.jobs.run_thread_job("endless", _endless)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    assert not w.close()
    assert asked and w.isVisible() and not handle.done
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert w.close()
    assert handle.done


def test_about_dialog_names_versions_and_the_research_notice(qtbot):
    from app.gui.dialogs import AboutDialog, about_html

    html = about_html()
    for word in ("Python", "Qt", "onnxruntime", "not a diagnostic device"):
        assert word in html
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    assert isinstance(dialog, QWidget)


@pytest.mark.parametrize("level", ["info", "error"])
def test_notify_reaches_the_status_bar(make_window, level):
    w = make_window()
    host = w.plugin_tabs[0].host
    host.notify("hello from the plug-in", level)
    assert "hello from the plug-in" in w.statusBar().currentMessage()
    assert host.notices[-1].level == level
