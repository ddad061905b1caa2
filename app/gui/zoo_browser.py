"""The model-zoo browser: installed models (broken ones with their error), the selected model's card,
and Verify / Install… buttons that run on thread jobs. It follows the active tab: `set_tasks` narrows the list to
the models that tab uses ("All models" shows every one)."""

from __future__ import annotations

import logging
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.card import ModelCard
from app.core.zoo import Zoo, ZooEntry

from .card_view import STYLE, entry_html
from .fit import ElidedLabel
from .jobs_qt import JobsModel

log = logging.getLogger(__name__)


class ZooBrowser(QWidget):
    def __init__(self, zoo: Zoo, jobs: JobsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.zoo = zoo
        self.jobs = jobs
        self.entries: list[ZooEntry] = []
        self.tasks: tuple[str, ...] = ()  # the active tab's model tasks; () = every model
        self.context = ""  # the active tab's name
        self._installed = 0
        self._status: dict[str, str] = {}  # model id → verification result (HTML)
        self.list = QListWidget()
        self.list.setAccessibleName("Installed models")
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # elide, never scroll sideways
        self.list.currentRowChanged.connect(self._show)
        self.card = QTextBrowser()
        self.card.setAccessibleName("Model card")
        self.card.setOpenLinks(False)
        self.card.document().setDefaultStyleSheet(STYLE)
        self.verify_button = QPushButton("Verify")
        self.verify_button.setToolTip("Check the model file's size and sha256 against its card")
        self.verify_button.clicked.connect(self.verify_selected)
        self.install_button = QPushButton("Install…")
        self.install_button.setToolTip("Install a model folder (card.toml + model.onnx) into your model zoo")
        self.install_button.clicked.connect(self.choose_and_install)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the model folders again (F5)")
        self.refresh_button.clicked.connect(self.refresh)
        self.count_label = ElidedLabel()
        self.all_box = QCheckBox("All models")
        self.all_box.setToolTip("Show every installed model, not only those the active tab uses")
        self.all_box.toggled.connect(lambda _=False: self.refresh())
        top = QHBoxLayout()
        top.addWidget(self.count_label, 1)
        top.addWidget(self.all_box)
        buttons = QHBoxLayout()
        for b in (self.verify_button, self.install_button, self.refresh_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.list)
        split.addWidget(self.card)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([80, 520])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        zoo.on_change(lambda: jobs.dispatch(self.refresh))
        self.refresh()

    # listing -----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        current = self.selected_id()
        every = self.zoo.entries()
        self._installed = len(every)
        shown = () if self.all_box.isChecked() else self.tasks
        self.entries = [e for e in every if not shown or e.card is None or e.card.task in shown]
        self.list.blockSignals(True)
        self.list.clear()
        for e in self.entries:
            if e.card is not None:  # the task only when models of several tasks are listed
                text = f"{e.id}  ·  " + ("" if shown and len(shown) == 1 else f"{e.card.task}  ·  ") + \
                    f"v{e.card.version}"
            else:
                text = f"{e.id}  ·  broken"
            item = QListWidgetItem(("" if e.card else "⚠ ") + text)
            item.setToolTip(f"{e.id}  ·  {e.card.task}  ·  v{e.card.version}" if e.card is not None else text)
            if e.card is None:
                item.setForeground(QBrush(QColor("#c0392b")))
                item.setToolTip(e.error or "")
            self.list.addItem(item)
        self.list.blockSignals(False)
        broken = sum(e.card is None for e in self.entries)
        if len(self.entries) == self._installed:
            text = f"{self._installed} model(s) installed"
        else:
            text = f"{len(self.entries)} of {self._installed} models"
        self.count_label.setText(text + (f", {broken} broken" if broken else ""))
        if len(self.entries) != self._installed:
            self.count_label.setToolTip(f"{text}: those for {self.context or 'this tab'}. Tick All models to see "
                                        "every installed model.")
        ids = [e.id for e in self.entries]
        usable = [e.id for e in self.entries if e.card is not None]
        first = usable[0] if usable else (ids[0] if ids else None)
        self.list.setCurrentRow(ids.index(current) if current in ids else (ids.index(first) if first else -1))
        self._show(self.list.currentRow())

    def set_tasks(self, tasks: tuple[str, ...], context: str = "") -> None:
        """Show the models for `tasks` (the active tab's), selecting the first usable one; () shows all."""
        if tuple(tasks) == self.tasks and context == self.context:
            return
        self.tasks, self.context = tuple(tasks), context
        current = self.selected_id()
        if current is not None and not any(e.id == current and e.card is not None and e.card.task in self.tasks
                                           for e in self.entries):
            self.list.setCurrentRow(-1)  # the previous tab's model: start from this tab's first
        self.refresh()

    def selected_id(self) -> str | None:
        row = self.list.currentRow()
        return self.entries[row].id if 0 <= row < len(self.entries) else None

    def select(self, model_id: str) -> None:
        ids = [e.id for e in self.entries]
        if model_id not in ids and not self.all_box.isChecked():
            self.all_box.setChecked(True)  # refreshes: now every model is listed
            ids = [e.id for e in self.entries]
        self.list.setCurrentRow(ids.index(model_id))

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.entries):
            if self._installed:
                self.card.setHtml(f"<p>None of the {self._installed} installed model(s) is for "
                                  f"{escape(self.context or 'this tab')}.</p><p>Tick <b>All models</b> to see them, "
                                  "train one with <b>File → New model…</b>, or install a model folder with "
                                  "<b>Install…</b>.</p>")
                self.verify_button.setEnabled(False)
                return
            self.card.setHtml("<p>No models installed yet.</p><p>Train one (<code>vitascope train RECIPE</code>) "
                              "or install a model folder with <b>Install…</b>.</p>")
            self.verify_button.setEnabled(False)
            return
        e = self.entries[row]
        self.verify_button.setEnabled(e.card is not None)
        self.card.setHtml(entry_html(e, self._status.get(e.id, "")))

    def card_text(self) -> str:
        return self.card.toPlainText()

    # actions -----------------------------------------------------------------------------------------------
    def verify_selected(self) -> None:
        model_id = self.selected_id()
        if model_id is None:
            return
        self._status[model_id] = "<span class='dim'>verifying…</span>"
        self._show(self.list.currentRow())

        def done(card: ModelCard) -> None:
            self._set_status(model_id, "<span class='ok'>✓ Verified: size and sha256 match the card.</span>")

        def failed(msg: str) -> None:
            self._set_status(model_id, f"<span class='err'>✗ Verification failed: {escape(msg)}</span>")

        self.jobs.run_thread_job(f"verify {model_id}", lambda tok, emit: self.zoo.verify(model_id),
                                 on_result=done, on_error=failed)

    def _set_status(self, model_id: str, html: str) -> None:
        self._status[model_id] = html
        if self.selected_id() == model_id:
            self._show(self.list.currentRow())

    def choose_and_install(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Install a model folder (card.toml + model.onnx)")
        if folder:
            self.install(Path(folder))

    def install(self, folder: Path) -> None:
        """Install `folder` on a thread job; the list refreshes when the zoo reports the change."""
        def done(card: ModelCard) -> None:
            self._status[card.id] = f"<span class='ok'>✓ Installed from {escape(str(folder))}</span>"
            self.refresh()
            self.select(card.id)

        def failed(msg: str) -> None:
            self.card.setHtml(f"<p class='err'>✗ Install failed: {escape(msg)}</p>")

        self.jobs.run_thread_job(f"install {folder.name}", lambda tok, emit: self.zoo.install(folder),
                                 on_result=done, on_error=failed)
