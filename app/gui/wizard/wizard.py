"""TrainingWizard: seven pages over one WizardSpec; jobs go through the app's JobsModel (so they show in the jobs
panel and the main window cancels and joins them on close). Closing the wizard during a run asks first. A task
whose problem has a job of its own (compress a CLIP model) replaces the Data, Starting point and Recipe pages by its
own page of inputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMessageBox, QWidget, QWizard

from app.core.wizard_spec import WizardSpec, available_tasks
from app.core.zoo import Zoo

from ..jobs_qt import JobsModel
from .clip_page import ClipPage
from .evaluate import EvaluatePage
from .install_page import InstallPage
from .pages import DataPage, StartPage, TaskPage
from .recipe_page import RecipePage
from .run_page import RunPage

PAGES = ("task", "data", "start", "recipe", "run", "evaluate", "install", "clip")


class TrainingWizard(QWizard):
    """`plugins`: the loaded plug-ins (their tasks are offered); `confirm_close=False` skips the question."""

    def __init__(self, plugins: Sequence[Any], zoo: Zoo, jobs: JobsModel, parent: QWidget | None = None,
                 spec: WizardSpec | None = None, confirm_close: bool = True) -> None:
        super().__init__(parent)
        self.setWindowTitle("New model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.HaveHelpButton, False)
        self.zoo, self.jobs, self.confirm_close = zoo, jobs, confirm_close
        self.spec = spec or WizardSpec()
        self.tasks = available_tasks(list(plugins))
        self.task_page = TaskPage(self.tasks)
        self.data_page = DataPage()
        self.start_page = StartPage()
        self.recipe_page = RecipePage()
        self.run_page = RunPage()
        self.evaluate_page = EvaluatePage()
        self.install_page = InstallPage()
        self.clip_page = ClipPage()
        self.pages = dict(zip(PAGES, (self.task_page, self.data_page, self.start_page, self.recipe_page,
                                      self.run_page, self.evaluate_page, self.install_page, self.clip_page),
                              strict=True))
        for page in self.pages.values():
            self.addPage(page)
        self.resize(940, 700)

    def page_id(self, name: str) -> int:
        return self.pageIds()[PAGES.index(name)]

    def nextId(self) -> int:  # noqa: N802 (Qt override): a task with its own page skips Data, Start and Recipe
        current = self.currentId()
        if current == self.page_id("task") and self.spec.page_job:
            return self.page_id("clip")
        if current == self.page_id("install"):
            return -1
        return super().nextId()

    def go(self, name: str) -> None:
        """Advance with Next until page `name` (tests, screenshots); stops at a page that is not complete."""
        target = self.page_id(name)
        while self.currentId() != target:
            before = self.currentId()
            self.next()
            if self.currentId() == before:
                break

    def stop_run(self, timeout: float = 30.0) -> None:
        """Cancel a running worker and wait for it (it writes a checkpoint)."""
        job = self.run_page.job
        if self.run_page.running and job is not None:
            self.run_page.cancel()
            job.stop(timeout)

    def _may_close(self) -> bool:
        if not self.run_page.running:
            return True
        if self.confirm_close:
            answer = QMessageBox.question(
                self, "Training is running",
                "A training run is in progress. Stop it (a checkpoint is kept, you can resume later) and close?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.stop_run()
        return True

    def reject(self) -> None:
        if self._may_close():
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self._may_close():
            event.accept()
        else:
            event.ignore()
