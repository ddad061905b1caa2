"""The shell around the plug-ins: geometry remembered but kept on the screen, keyboard access (shortcuts, focus,
accessible names), the offline guide and shortcuts list, About with versions and licences, plots and secondary
text that follow the theme."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QWidget

from app.gui.fit import ElidedLabel, clamp_rect
from app.gui.settings import app_settings


def test_clamp_rect_keeps_the_frame_on_the_screen():
    screen = QRect(0, 0, 1400, 900)
    assert clamp_rect(QRect(100, 80, 1000, 700), screen) == QRect(100, 80, 1000, 700)
    # the relaunch that came back too wide and too low: shrunk to the screen, frame (2 + 25 px) included
    assert clamp_rect(QRect(0, 24, 1620, 900), screen, frame=QRect(0, 0, 2, 25).size()) == QRect(0, 0, 1398, 875)
    assert clamp_rect(QRect(-300, 2000, 800, 600), screen) == QRect(0, 300, 800, 600)


def test_geometry_round_trips_without_drift_and_is_clamped_to_the_screen(make_window):
    area = QApplication.primaryScreen().availableGeometry()
    w1 = make_window(persist=True)
    w1.show()
    w1.resize(area.width() - 200, area.height() - 150)
    w1.move(area.x() + 37, area.y() + 24)
    w1.close()
    w2 = make_window(persist=True)
    w2.show()
    assert (w2.pos().x(), w2.pos().y()) == (area.x() + 37, area.y() + 24)  # not 24 px lower on each relaunch
    assert (w2.width(), w2.height()) == (area.width() - 200, area.height() - 150)
    w2.close()
    s = app_settings()  # a layout saved on a bigger monitor
    s.setValue("window/rect", f"{area.x() + 200},{area.y() + 300},{area.width() + 620},{area.height() + 400}")
    s.setValue("window/frame", "2,25")
    s.sync()
    w3 = make_window(persist=True)
    w3.show()
    frame = QRect(w3.pos(), w3.size().grownBy(w3.contentsMargins()) + QRect(0, 0, 2, 25).size())
    assert area.contains(frame), (frame, area)


def test_first_run_fits_the_screen_and_puts_the_demo_last(make_window, qtbot):
    w = make_window(persist=True)
    w.show()
    area = w.screen().availableGeometry()
    qtbot.waitUntil(lambda: area.contains(w.frameGeometry()), timeout=3000)  # once the frame is known
    assert w.minimumSizeHint().width() <= area.width() and w.minimumSizeHint().height() <= area.height()
    ids = [t.id for t in w.plugin_tabs]
    assert ids[-1] == "demo" and w.current_tab().id == ids[0]


def test_shell_actions_have_shortcuts_and_menus_have_mnemonics(make_window, qtbot):
    w = make_window()
    w.show()
    menus = [a for a in w.menuBar().actions() if a.menu() is not None]
    assert [a.text() for a in menus] == ["&File", "&View", "&Models", "&Jobs", "&Help"]
    rows = w.shortcut_rows()
    keys = [k for _, _, k in rows]
    assert len(keys) == len(set(keys)), "two shell actions share a shortcut"
    for needed in ("Ctrl+N", "Ctrl+Q", "F1", "Ctrl+1", "Ctrl+Shift+M", "Ctrl+Shift+J", "Ctrl+Shift+T", "F5"):
        assert needed in keys, needed
    ids = [t.id for t in w.plugin_tabs]
    w.tab_actions[ids.index("demo")].trigger()  # Ctrl+3
    assert w.current_tab().id == "demo"
    w.zoo_action.trigger()
    assert w.focusWidget() is w.zoo_browser.list
    w.jobs_action.trigger()
    assert w.focusWidget() is w.jobs_panel.tree


def test_shell_controls_have_names_and_take_focus(make_window):
    w = make_window()
    w.show()
    shell: list[QWidget] = [w.zoo_browser, w.jobs_panel, w.statusBar()]
    for root in shell:
        for b in root.findChildren(QAbstractButton):
            assert b.text() or b.accessibleName(), b
            assert b.focusPolicy() & Qt.FocusPolicy.TabFocus, b.text()
    for widget in (w.tabs, w.zoo_browser.list, w.zoo_browser.card, w.jobs_panel.tree, w.jobs_button):
        assert widget.accessibleName(), widget


def test_help_guide_and_shortcuts_list_are_offline(make_window):
    w = make_window()
    guide = w.show_guide()
    text = guide.text()
    for words in ("ECG screening", "Holography", "Model zoo", "Jobs", "New model", "--resume", "Keyboard"):
        assert words in text, words
    shortcuts = w.show_shortcuts().text()
    for _, action, keys in w.shortcut_rows():
        assert action in shortcuts and keys in shortcuts
    assert "Tab / Shift+Tab" in shortcuts


def test_about_names_versions_and_licences(qtbot):
    from app.gui.dialogs import AboutDialog, about_html, versions

    v = versions()
    for name in ("Vitascope", "Python", "Qt", "PySide6", "onnxruntime", "NumPy"):
        assert v.get(name), name
    html = about_html()
    assert all(name in html for name in v)
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    for licence in ("MIT", "LGPL-3.0", "BSD-3-Clause", "Apache-2.0"):
        assert licence in dialog.licence_text(), licence


def test_plots_follow_the_theme_and_keep_a_plugin_s_own_background(make_window, qtbot):
    from app.gui.theme import PLOT_COLOURS

    w = make_window()
    default_plot = pg.PlotWidget()
    own = pg.PlotWidget()
    own.setBackground("#123456")
    for p in (default_plot, own):
        qtbot.addWidget(p)
    try:
        w.set_theme("dark")
        assert default_plot.backgroundBrush().color().name() == PLOT_COLOURS["dark"][0]
        assert pg.PlotWidget().backgroundBrush().color().name() == PLOT_COLOURS["dark"][0]  # new plots too
        w.set_theme("light")
        assert default_plot.backgroundBrush().color().name() == PLOT_COLOURS["light"][0]
        assert own.backgroundBrush().color().name() == "#123456"
    finally:
        w.set_theme("light")


def _contrast(a: QColor, b: QColor) -> float:
    def lum(c: QColor) -> float:
        ch = [x / 255 for x in (c.red(), c.green(), c.blue())]
        ch = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_wizard_text_is_readable_in_both_themes(make_window):
    from app.gui.wizard.common import MUTED_STYLE

    w = make_window()
    wiz = w.open_wizard()
    steps = wiz.task_page.steps
    try:
        for theme in ("light", "dark"):
            w.set_theme(theme)
            QApplication.processEvents()
            pal = QApplication.palette()
            steps.ensurePolished()
            assert steps.isEnabled() and steps.styleSheet() == ""  # "What happens next" is ordinary text
            assert steps.palette().color(QPalette.ColorRole.WindowText) == pal.color(QPalette.ColorRole.WindowText)
            muted = QLabel("hint")
            muted.setStyleSheet(MUTED_STYLE)
            muted.ensurePolished()
            colour = muted.palette().color(QPalette.ColorRole.WindowText)
            assert _contrast(colour, pal.color(QPalette.ColorRole.Window)) >= 4.5, theme
            disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
            assert colour != disabled
    finally:
        w.set_theme("light")


def test_elided_label_keeps_the_full_text_in_its_tooltip(qtbot):
    label = ElidedLabel("a rather long model count that does not fit the dock")
    qtbot.addWidget(label)
    label.resize(80, 20)
    label.show()
    assert label.text().endswith("…") and label.toolTip() == label.full_text()
    assert label.minimumSizeHint().width() <= 80  # it never widens its dock
