"""The main window: plug-ins as tabs, model-zoo and jobs docks, menus, status bar, persisted layout.

Plug-in widget convention: the window calls `widget.start_demo()` (if present) in smoke mode, and on close
`widget.shutdown()` (else `widget.stop()`) before it stops streams, cancels and joins jobs and closes engines."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.registry import Registry, discover
from app.core.zoo import Zoo

from .dialogs import AboutDialog, Problem, ProblemsDialog
from .dispatch import Dispatcher
from .host import QtHost
from .jobs_panel import JobsPanel
from .jobs_qt import JobsModel
from .settings import app_settings
from .theme import THEMES, apply_theme, current_theme
from .zoo_browser import ZooBrowser

log = logging.getLogger(__name__)
DEFAULT_SIZE = (1240, 780)


@dataclass
class PluginTab:
    id: str
    name: str
    host: QtHost | None = None
    engine: Any = None
    widget: QWidget | None = None
    error: str | None = None


def _error_page(title: str, message: str) -> QWidget:
    page = QWidget()
    label = QLabel(f"<h3>{title}</h3><p>This plug-in could not be started:</p><pre>{message}</pre>"
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
        self.setCentralWidget(self.tabs)
        self.jobs_panel = JobsPanel(self.jobs)
        self.zoo_browser = ZooBrowser(self.zoo, self.jobs)
        self.zoo_dock = self._dock(self.zoo_browser, "Model zoo", "dock-zoo", Qt.DockWidgetArea.RightDockWidgetArea)
        self.jobs_dock = self._dock(self.jobs_panel, "Jobs", "dock-jobs", Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.zoo_dock], [400], Qt.Orientation.Horizontal)
        self.resizeDocks([self.jobs_dock], [120], Qt.Orientation.Vertical)
        self.jobs_label = QLabel()
        self.statusBar().addPermanentWidget(self.jobs_label)
        self.jobs.added.connect(self._update_jobs_label)
        self.jobs.changed.connect(self._update_jobs_label)
        self._update_jobs_label()

        for plugin in self.registry.plugins:
            self._add_plugin(plugin)
        if not self.plugin_tabs:
            self.tabs.addTab(_error_page("No plug-ins", "no plug-in could be loaded"), "No plug-ins")
        self._build_menus()
        self._restore()
        self.tabs.currentChanged.connect(self._tab_changed)
        if self.problems:
            for p in self.problems:
                log.warning("plug-in problem: %s (%s): %s", p.name, p.where, p.message)
            QTimer.singleShot(0, self.show_problems)
        self.statusBar().showMessage("Ready", 3000)

    # construction ------------------------------------------------------------------------------------------
    def _dock(self, widget: QWidget, title: str, name: str, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _add_plugin(self, plugin: Any) -> None:
        info = plugin.info
        tab = PluginTab(info.id, info.name)
        tab.host = QtHost(info.id, self.zoo, self.jobs, status=self.show_notice,
                          dock=lambda w, t, pid=info.id: self._plugin_dock(pid, w, t), parent=self)
        stage = "engine"
        try:
            tab.engine = plugin.create_engine(tab.host)
            stage = "widget"
            tab.widget = plugin.create_widget(tab.host, tab.engine)
            if not isinstance(tab.widget, QWidget):
                raise TypeError(f"create_widget returned {type(tab.widget).__name__}, not a QWidget")
        except Exception as e:
            log.error("plug-in %s: %s failed to build\n%s", info.id, stage, traceback.format_exc())
            tab.error = f"{stage} failed to build: {e.__class__.__name__}: {e}"
            tab.widget = None
            self.problems.append(Problem(info.name, info.id, tab.error))
            self.tabs.addTab(_error_page(info.name, tab.error), f"⚠ {info.name}")
        else:
            self.tabs.addTab(tab.widget, info.name)
        self.tabs.setTabToolTip(self.tabs.count() - 1, info.description or info.name)
        self.plugin_tabs.append(tab)

    def _plugin_dock(self, plugin_id: str, widget: QWidget, title: str) -> None:
        dock = self._dock(widget, title, f"dock-{plugin_id}-{title}", Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.zoo_dock, dock)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.new_model_action = QAction("&New model…", self)
        self.new_model_action.setShortcut(QKeySequence.StandardKey.New)
        self.new_model_action.setStatusTip("Train or compress a model from your data (runs in a worker process)")
        self.new_model_action.triggered.connect(self.open_wizard)
        file_menu.addAction(self.new_model_action)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

        view = self.menuBar().addMenu("&View")
        self.theme_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        group.setExclusive(True)
        for name in THEMES:
            act = QAction(f"{name.capitalize()} theme", self, checkable=True)
            act.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            group.addAction(act)
            view.addAction(act)
            self.theme_actions[name] = act
        view.addSeparator()
        view.addAction(self.zoo_dock.toggleViewAction())
        view.addAction(self.jobs_dock.toggleViewAction())

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Vitascope", self)
        about.triggered.connect(self.show_about)
        problems = QAction("Plug-in &problems", self)
        problems.triggered.connect(self.show_problems)
        help_menu.addAction(about)
        help_menu.addAction(problems)

    # settings ----------------------------------------------------------------------------------------------
    def _restore(self) -> None:
        s = app_settings()
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(*DEFAULT_SIZE)
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        self.set_theme(str(s.value("theme", "light")), save=False)
        last = str(s.value("last_tab", ""))
        ids = [t.id for t in self.plugin_tabs]
        if last in ids:
            self.tabs.setCurrentIndex(ids.index(last))

    def _save(self) -> None:
        if not self.persist:
            return
        s = app_settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("theme", current_theme(QApplication.instance()))
        tab = self.current_tab()
        if tab is not None:
            s.setValue("last_tab", tab.id)
        s.sync()

    def _tab_changed(self, index: int) -> None:
        if self.persist and 0 <= index < len(self.plugin_tabs):
            app_settings().setValue("last_tab", self.plugin_tabs[index].id)

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

    def _update_jobs_label(self, *_: object) -> None:
        n = sum(r.active for r in self.jobs.records)
        self.jobs_label.setText(f"{n} job(s) running" if n else "no jobs running")

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

    def show_problems(self) -> ProblemsDialog:
        if self.problems_dialog is None:
            self.problems_dialog = ProblemsDialog(self.problems, self)
        self.problems_dialog.show()  # never modal: it must not block start-up or a smoke run
        self.problems_dialog.raise_()
        return self.problems_dialog

    # smoke runs and shutdown -------------------------------------------------------------------------------
    def start_demos(self) -> list[str]:
        """Call `start_demo()` on every plug-in widget that has one; returns the ids that failed."""
        failed = []
        for i, tab in enumerate(self.plugin_tabs):
            start = getattr(tab.widget, "start_demo", None)
            if tab.widget is None or not callable(start):
                continue
            self.tabs.setCurrentIndex(i)
            try:
                start()
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
            stop = getattr(tab.widget, "shutdown", None) or getattr(tab.widget, "stop", None)
            if callable(stop):
                try:
                    stop()
                except Exception:
                    log.exception("plug-in %s: stopping its widget failed", tab.id)
            if tab.host is not None:
                tab.host.shutdown(timeout)
        ok = self.jobs.cancel_all_and_join(timeout)
        for tab in self.plugin_tabs:
            if tab.engine is not None:
                try:
                    tab.engine.close()
                except Exception:
                    log.exception("plug-in %s: closing its engine failed", tab.id)
        self.jobs_panel.stop_timer()
        self.dispatch.close()
        return ok

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if not self._shut_down:
            running = self.jobs.running()
            if running and self.confirm_close:
                names = ", ".join(r.name for r in running[:5])
                answer = QMessageBox.question(
                    self, "Jobs are running",
                    f"{len(running)} job(s) are still running ({names}).\nCancel them and quit?",
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
