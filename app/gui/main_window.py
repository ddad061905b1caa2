"""The main window: plug-ins as tabs (the demo last), model-zoo and jobs docks, menus with keyboard shortcuts,
status bar, and a layout that is remembered but always fits the current screen.

A plug-in widget keeps app.core.plugin_api.PluginWidget: the window calls `start_demo()` in smoke mode and, on
close, `shutdown()` before it stops streams, cancels and joins jobs and closes engines."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QGuiApplication, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.plugin_api import PluginWidget
from app.core.registry import Registry, discover
from app.core.zoo import Zoo

from .dialogs import AboutDialog, Problem, ProblemsDialog
from .dispatch import Dispatcher
from .fit import FitPage, clamp_rect, keep_on_screen, screen_for
from .help import HelpDialog, guide_html, shortcuts_html
from .host import QtHost
from .jobs_panel import JobsPanel
from .jobs_qt import JobsModel
from .settings import app_settings
from .theme import THEMES, apply_theme, current_theme
from .zoo_browser import ZooBrowser

log = logging.getLogger(__name__)
DEFAULT_SIZE = (1400, 900)  # first run: at least this, or 85 % × 90 % of a big screen; never more than the screen
COMPACT = QSize(1280, 820)  # below this the jobs dock shares the right dock area with the model zoo
DEMO_IDS = ("demo",)  # plug-ins that only demonstrate the app: their tabs come last
GEOMETRY_VERSION = 2  # window/rect + window/frame (window/geometry, saved by restoreGeometry, drifted on X11)


@dataclass
class PluginTab:
    id: str
    name: str
    tasks: tuple[str, ...] = ()
    host: QtHost | None = None
    engine: Any = None
    widget: Any = None  # a QWidget that keeps the PluginWidget lifecycle
    error: str | None = None


def quit_question(running: list[Any]) -> str:
    """What quitting does to the running jobs: training runs are cancelled after their current step, which
    writes a checkpoint; their recipe resumes from it."""
    names = ", ".join(r.name for r in running[:5]) + (", …" if len(running) > 5 else "")
    text = f"{len(running)} job(s) are still running ({names}). Quitting cancels them."
    runs = [r for r in running if r.kind == "process" and getattr(r.handle, "spec", None) is not None
            and r.handle.spec.out_dir]
    for r in runs[:3]:
        out = Path(r.handle.spec.out_dir)
        recipe = out / "recipe.toml"
        text += (f"\n\n{r.name}: stops after its current step and keeps its checkpoint in {out}."
                 + (f" To continue later: vitascope train {recipe} --resume" if recipe.is_file() else ""))
    return text + "\n\nCancel the jobs and quit?"


def _guarded(tab: PluginTab, what: str, step: Callable[[], Any] | None) -> None:
    """Run one plug-in's shutdown step (if it has it); its failure is logged, the others still run."""
    if step is None:
        return
    try:
        step()
    except Exception:
        log.exception("plug-in %s: %s failed", tab.id, what)


def _error_page(title: str, message: str) -> QWidget:
    page = QWidget()
    label = QLabel(f"<h3>{escape(title)}</h3><p>This plug-in could not be started:</p><p><tt>{escape(message)}</tt></p>"
                   "<p>The rest of Vitascope works normally. See Help → Plug-in problems.</p>")
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    layout = QVBoxLayout(page)
    layout.addWidget(label)
    layout.addStretch(1)
    return page


class MainWindow(QMainWindow):
    """`smoke` skips the close question and settings writes; `confirm_close=False` skips the question only."""

    def __init__(self, registry: Registry | None = None, zoo: Zoo | None = None, *, smoke: bool = False,
                 confirm_close: bool = True, persist: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("Vitascope")
        self.smoke = smoke
        self.confirm_close = confirm_close and not smoke
        self.persist = persist and not smoke
        self.zoo = zoo or Zoo()
        self.registry = registry if registry is not None else discover()
        self.dispatch = Dispatcher(self)
        self.jobs = JobsModel(self.dispatch, self)
        self.problems = [Problem(e.name, e.target, e.message) for e in self.registry.errors]
        self.plugin_tabs: list[PluginTab] = []
        self.problems_dialog: ProblemsDialog | None = None
        self.wizard: Any = None  # the training wizard (app.gui.wizard), created on first use
        self._shut_down = False

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.setAccessibleName("Plug-ins")
        self.tabs.setUsesScrollButtons(True)
        self.tabs.tabBar().setExpanding(False)
        self.setCentralWidget(self.tabs)
        self.jobs_panel = JobsPanel(self.jobs)
        self.zoo_browser = ZooBrowser(self.zoo, self.jobs)
        self.zoo_dock = self._dock(self.zoo_browser, "Model zoo", "dock-zoo", Qt.DockWidgetArea.RightDockWidgetArea)
        self.jobs_dock = self._dock(self.jobs_panel, "Jobs", "dock-jobs", Qt.DockWidgetArea.BottomDockWidgetArea)
        self.jobs_button = QToolButton()
        self.jobs_button.setAutoRaise(True)
        self.jobs_button.setAccessibleName("Jobs")
        self.jobs_button.setToolTip("Show the jobs panel (Ctrl+Shift+J)")
        self.jobs_button.clicked.connect(self.show_jobs)
        self.statusBar().addPermanentWidget(self.jobs_button)
        self.jobs.added.connect(self._job_added)
        self.jobs.changed.connect(self._update_jobs_label)
        self._update_jobs_label()

        plugins = sorted(self.registry.plugins, key=lambda p: p.info.id in DEMO_IDS)  # stable: demo last
        for plugin in plugins:
            self._add_plugin(plugin)
        if not self.plugin_tabs:
            self.tabs.addTab(_error_page("No plug-ins", "no plug-in could be loaded"), "No plug-ins")
        self._build_menus()
        self._restore()
        self.tabs.currentChanged.connect(self._tab_changed)
        self._follow_tab(self.tabs.currentIndex())
        if self.problems:
            for p in self.problems:
                log.warning("plug-in problem: %s (%s): %s", p.name, p.where, p.message)
            QTimer.singleShot(0, self.show_problems)
        self.statusBar().showMessage("Ready", 3000)
        self._fitted_once = False

    # construction ------------------------------------------------------------------------------------------
    def _dock(self, widget: QWidget, title: str, name: str, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _add_plugin(self, plugin: Any) -> None:
        info = plugin.info
        tab = PluginTab(info.id, info.name, tuple(getattr(info, "tasks", ()) or ()))
        tab.host = QtHost(info.id, self.zoo, self.jobs, status=self.show_notice,
                          dock=lambda w, t, pid=info.id: self._plugin_dock(pid, w, t), parent=self)
        stage = "engine"
        try:
            tab.engine = plugin.create_engine(tab.host)
            stage = "widget"
            tab.widget = plugin.create_widget(tab.host, tab.engine)
            if not isinstance(tab.widget, QWidget):
                raise TypeError(f"create_widget returned {type(tab.widget).__name__}, not a QWidget")
            if not isinstance(tab.widget, PluginWidget):
                missing = [m for m in ("start", "stop", "start_demo", "shutdown") if not hasattr(tab.widget, m)]
                raise TypeError(f"{type(tab.widget).__name__} lacks the widget lifecycle ({', '.join(missing)}); "
                                "base it on app.gui.sdk.PluginWidgetBase")
        except Exception as e:
            log.error("plug-in %s: %s failed to build\n%s", info.id, stage, traceback.format_exc())
            tab.error = f"{stage} failed to build: {e.__class__.__name__}: {e}"
            tab.widget = None
            self.problems.append(Problem(info.name, info.id, tab.error))
            self.tabs.addTab(FitPage(_error_page(info.name, tab.error)), f"⚠ {info.name}")
        else:
            self.tabs.addTab(FitPage(tab.widget), info.name)
        index = self.tabs.count() - 1
        self.tabs.setTabToolTip(index, (info.description or info.name)
                                + (f" (Ctrl+{index + 1})" if index < 9 else ""))
        self.plugin_tabs.append(tab)

    def _plugin_dock(self, plugin_id: str, widget: QWidget, title: str) -> None:
        dock = self._dock(widget, title, f"dock-{plugin_id}-{title}", Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.zoo_dock, dock)

    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.triggered.connect(lambda _=False: slot())
        menu.addAction(act)
        return act

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.new_model_action = self._action(
            file_menu, "&New model…", self.open_wizard, QKeySequence.StandardKey.New,
            "Train or compress a model from your data (runs in a worker process)")
        file_menu.addSeparator()
        self.quit_action = self._action(file_menu, "&Quit", self.close, "Ctrl+Q",
                                        "Close Vitascope (running jobs are cancelled)")

        view = bar.addMenu("&View")
        self.tab_actions: list[QAction] = []
        for i in range(min(9, self.tabs.count())):
            self.tab_actions.append(self._action(view, f"&{i + 1} {self.tabs.tabText(i)}",
                                                 lambda i=i: self.go_to_tab(i), f"Ctrl+{i + 1}"))
        self._action(view, "Ne&xt tab", lambda: self.go_to_tab(self.tabs.currentIndex() + 1), "Ctrl+PgDown")
        self._action(view, "Pre&vious tab", lambda: self.go_to_tab(self.tabs.currentIndex() - 1), "Ctrl+PgUp")
        view.addSeparator()
        self.theme_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        group.setExclusive(True)
        for name in THEMES:
            act = QAction(f"{name.capitalize()} theme", self, checkable=True)
            act.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            group.addAction(act)
            view.addAction(act)
            self.theme_actions[name] = act
        self._action(view, "&Switch theme", self.toggle_theme, "Ctrl+Shift+T", "Light ↔ dark")
        view.addSeparator()
        for dock in (self.zoo_dock, self.jobs_dock):
            toggle = dock.toggleViewAction()
            toggle.setText(f"{dock.windowTitle()} panel")
            view.addAction(toggle)
        self._action(view, "Reset &layout", self.reset_layout, None,
                     "Put the panels back where they start and fit the window to this screen")

        models = bar.addMenu("&Models")
        self.zoo_action = self._action(models, "Go to the model &zoo", self.show_zoo, "Ctrl+Shift+M",
                                       "Show the model zoo panel and put the keyboard focus in its list")
        self._action(models, "&Verify the selected model", self.zoo_browser.verify_selected, "Ctrl+Shift+V",
                     "Check the model file's size and sha256 against its card")
        self._action(models, "&Install a model folder…", self.zoo_browser.choose_and_install, "Ctrl+Shift+I",
                     "Install a model folder (card.toml + model.onnx) into your model zoo")
        self._action(models, "&Refresh", self.zoo_browser.refresh, "F5", "Read the model folders again")
        self.all_models_action = QAction("Show &all models", self, checkable=True)
        self.all_models_action.toggled.connect(self.zoo_browser.all_box.setChecked)
        self.zoo_browser.all_box.toggled.connect(self.all_models_action.setChecked)
        models.addAction(self.all_models_action)

        jobs = bar.addMenu("&Jobs")
        self.jobs_action = self._action(jobs, "Go to the &jobs", self.show_jobs, "Ctrl+Shift+J",
                                        "Show the jobs panel and put the keyboard focus in its list")
        self._action(jobs, "&Cancel the selected job", self.cancel_selected_job, "Ctrl+Shift+K",
                     "Cancel the job selected in the jobs panel (a training run keeps a checkpoint)")
        self._action(jobs, "C&lear finished jobs", self.jobs_panel.clear_finished, None,
                     "Remove finished, failed and cancelled jobs from the list")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&User guide", self.show_guide, QKeySequence.StandardKey.HelpContents,
                     "A short guide to Vitascope (works offline)")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, "Ctrl+/",
                     "Every keyboard shortcut of the window")
        help_menu.addSeparator()
        self._action(help_menu, "Plug-in &problems", self.show_problems)
        self._action(help_menu, "&About Vitascope", self.show_about, None, "Versions and licences")

    # settings ----------------------------------------------------------------------------------------------
    def _restore(self) -> None:
        s = app_settings()
        restored = self._restore_geometry(s)
        state = s.value("window/state")
        if restored and isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        else:
            self._default_docks()
        self.set_theme(str(s.value("theme", "light")), save=False)
        last = str(s.value("last_tab", ""))
        ids = [t.id for t in self.plugin_tabs]
        self.tabs.setCurrentIndex(ids.index(last) if last in ids else 0)  # first run: the first domain plug-in

    def _available(self, rect: QRect | None = None) -> QRect:
        screen = screen_for(rect) if rect is not None else (self.screen() or QGuiApplication.primaryScreen())
        return screen.availableGeometry()

    def _restore_geometry(self, s: Any) -> bool:
        """The saved client size at the saved frame position, clamped to the screen it is on now; False (and a
        first-run size) when nothing usable was saved."""
        try:
            x, y, w, h = (int(v) for v in str(s.value("window/rect", "")).split(","))
            fw, fh = (int(v) for v in str(s.value("window/frame", "0,0")).split(","))
        except ValueError:
            self._default_geometry()
            return False
        rect = QRect(x, y, w, h)
        fitted = clamp_rect(rect, self._available(rect), QSize(fw, fh))
        self.resize(fitted.size())
        self.move(fitted.topLeft())
        if str(s.value("window/maximized", "false")).lower() == "true":
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)
        return True

    def _default_geometry(self) -> None:
        area = self._available()
        frame = QSize(0, 32)  # room for a title bar before the window manager has told us its size
        want = QSize(max(DEFAULT_SIZE[0], min(1800, area.width() * 85 // 100)),
                     max(DEFAULT_SIZE[1], min(1100, area.height() * 90 // 100)))
        size = QSize(min(want.width(), area.width() - frame.width()),
                     min(want.height(), area.height() - frame.height()))
        self.resize(size)
        self.move(area.x() + (area.width() - size.width()) // 2, area.y() + max(0, (area.height() - size.height()
                                                                                  - frame.height()) // 2))

    def _default_docks(self) -> None:
        """Zoo on the right; jobs at the bottom, or next to the zoo on small screens so the tabs keep their
        height."""
        area = self._available()
        compact = area.width() < COMPACT.width() or area.height() < COMPACT.height()
        for dock in (self.zoo_dock, self.jobs_dock):
            dock.setFloating(False)
            dock.show()
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.zoo_dock)
        if compact:
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.jobs_dock)
            self.tabifyDockWidget(self.zoo_dock, self.jobs_dock)
            self.zoo_dock.raise_()
            self.resizeDocks([self.zoo_dock], [min(300, max(240, area.width() // 4))], Qt.Orientation.Horizontal)
        else:
            self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.jobs_dock)
            self.resizeDocks([self.zoo_dock], [min(420, area.width() // 4)], Qt.Orientation.Horizontal)
            self.resizeDocks([self.jobs_dock], [max(140, area.height() // 7)], Qt.Orientation.Vertical)  # ~5 rows

    def reset_layout(self) -> None:
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMaximized)
        self._default_geometry()
        self._default_docks()
        QTimer.singleShot(0, lambda: keep_on_screen(self))

    def _save(self) -> None:
        if not self.persist:
            return
        s = app_settings()
        normal = self.normalGeometry() if self.isMaximized() else QRect(self.pos(), self.size())
        frame = self.frameGeometry().size() - self.geometry().size()
        s.setValue("window/rect", f"{normal.x()},{normal.y()},{normal.width()},{normal.height()}")
        s.setValue("window/frame", f"{max(0, frame.width())},{max(0, frame.height())}")
        s.setValue("window/maximized", "true" if self.isMaximized() else "false")
        s.setValue("window/layout_version", GEOMETRY_VERSION)
        s.remove("window/geometry")
        s.setValue("window/state", self.saveState())
        s.setValue("theme", current_theme(QApplication.instance()))
        tab = self.current_tab()
        if tab is not None:
            s.setValue("last_tab", tab.id)
        s.sync()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if not self._fitted_once:
            self._fitted_once = True
            for ms in (0, 300, 1000):  # again once the window manager has added its frame (it may take a while)
                QTimer.singleShot(ms, self._keep_on_screen)

    def _keep_on_screen(self) -> None:
        if not self._shut_down and self.isVisible():
            keep_on_screen(self)

    def _tab_changed(self, index: int) -> None:
        self._follow_tab(index)
        if self.persist and 0 <= index < len(self.plugin_tabs):
            app_settings().setValue("last_tab", self.plugin_tabs[index].id)

    def _follow_tab(self, index: int) -> None:
        """The model zoo shows the models of the active tab's task."""
        if 0 <= index < len(self.plugin_tabs):
            tab = self.plugin_tabs[index]
            self.zoo_browser.set_tasks(tab.tasks, tab.name)

    def go_to_tab(self, index: int) -> None:
        n = self.tabs.count()
        if n:
            self.tabs.setCurrentIndex(index % n)
            page = self.tabs.currentWidget()
            if page is not None:
                page.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def show_zoo(self) -> None:
        self.zoo_dock.show()
        self.zoo_dock.raise_()
        self.zoo_browser.list.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def show_jobs(self) -> None:
        self.jobs_dock.show()
        self.jobs_dock.raise_()
        self.jobs_panel.tree.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def cancel_selected_job(self) -> None:
        rec = self.jobs_panel.selected()
        if rec is None:
            self.show_notice("Select a running job in the jobs panel first (Ctrl+Shift+J, then the arrow keys)")
        elif rec.active:
            self.jobs.cancel(rec)

    def toggle_theme(self) -> None:
        self.set_theme("dark" if current_theme(QApplication.instance()) == "light" else "light")

    def set_theme(self, name: str, save: bool = True) -> None:
        name = apply_theme(QApplication.instance(), name)
        for n, act in self.theme_actions.items():
            act.setChecked(n == name)
        if save and self.persist:
            app_settings().setValue("theme", name)

    def current_tab(self) -> PluginTab | None:
        i = self.tabs.currentIndex()
        return self.plugin_tabs[i] if 0 <= i < len(self.plugin_tabs) else None

    # notices and dialogs -----------------------------------------------------------------------------------
    def show_notice(self, text: str, level: str = "info") -> None:
        prefix = {"error": "Error: ", "warning": "Warning: "}.get(level, "")
        self.statusBar().showMessage(prefix + text, 15000 if level == "error" else 8000)

    def _job_added(self, rec: Any) -> None:
        self._update_jobs_label()
        if rec.kind == "process":  # a run the user started: show it, even behind the zoo on a small screen
            self.jobs_dock.show()
            self.jobs_dock.raise_()

    def _update_jobs_label(self, *_: object) -> None:
        n = sum(r.active for r in self.jobs.records)
        self.jobs_button.setText(f"{n} job(s) running" if n else "no jobs running")

    def open_wizard(self) -> Any:
        """Show the training wizard (one per window; its jobs live in this window's jobs panel)."""
        if self.wizard is None:
            from .wizard import TrainingWizard

            self.wizard = TrainingWizard(self.registry.plugins, self.zoo, self.jobs, self)
        self.wizard.show()
        self.wizard.raise_()
        return self.wizard

    def show_about(self) -> None:
        AboutDialog(self).exec()

    def show_guide(self) -> HelpDialog:
        return self._help("guide", "Vitascope user guide", guide_html())

    def show_shortcuts(self) -> HelpDialog:
        return self._help("shortcuts", "Keyboard shortcuts", shortcuts_html(self.shortcut_rows()))

    def _help(self, key: str, title: str, html: str) -> HelpDialog:
        dialogs = self.__dict__.setdefault("_help_dialogs", {})
        dialog = dialogs.get(key)
        if dialog is None:
            dialog = dialogs[key] = HelpDialog(title, html, self)
        else:
            dialog.set_html(html)
        dialog.show()  # not modal: the guide can stay open next to the window
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def shortcut_rows(self) -> list[tuple[str, str, str]]:
        """(menu, action, keys) for every menu action with a shortcut."""
        rows = []
        for menu_action in self.menuBar().actions():
            menu = menu_action.menu()
            if menu is None:
                continue
            for act in menu.actions():
                keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                if keys:
                    rows.append((menu_action.text().replace("&", ""), act.text().replace("&", ""), keys))
        return rows

    def show_problems(self) -> ProblemsDialog:
        if self.problems_dialog is None:
            self.problems_dialog = ProblemsDialog(self.problems, self)
        self.problems_dialog.show()  # never modal: it must not block start-up or a smoke run
        self.problems_dialog.raise_()
        return self.problems_dialog

    # smoke runs and shutdown -------------------------------------------------------------------------------
    def start_demos(self) -> list[str]:
        """Call `start_demo()` on every plug-in widget; returns the ids that failed."""
        failed = []
        for i, tab in enumerate(self.plugin_tabs):
            if tab.widget is None:
                continue
            self.tabs.setCurrentIndex(i)
            try:
                tab.widget.start_demo()
            except Exception as e:
                log.error("plug-in %s: start_demo failed: %s", tab.id, e)
                failed.append(tab.id)
        return failed

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop widgets, streams, jobs and processes and close engines; True if every job ended in time."""
        if self._shut_down:
            return True
        self._shut_down = True
        for tab in self.plugin_tabs:
            _guarded(tab, "stopping its widget", None if tab.widget is None else tab.widget.shutdown)
            if tab.host is not None:
                tab.host.shutdown(timeout)
        ok = self.jobs.cancel_all_and_join(timeout)
        for tab in self.plugin_tabs:
            _guarded(tab, "closing its engine", None if tab.engine is None else tab.engine.close)
        self.jobs_panel.stop_timer()
        self.dispatch.close()
        return ok

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if not self._shut_down:
            running = self.jobs.running()
            if running and self.confirm_close:
                answer = QMessageBox.question(
                    self, "Jobs are running", quit_question(running),
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                    QMessageBox.StandardButton.No)
                if answer != QMessageBox.StandardButton.Yes:
                    event.ignore()
                    return
            self._save()
            self.shutdown()
            if self.problems_dialog is not None:
                self.problems_dialog.close()
            if self.wizard is not None:
                self.wizard.confirm_close = False  # asked above; shutdown() has stopped its worker
                self.wizard.close()
        event.accept()
