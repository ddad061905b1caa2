"""The model-zoo browser: installed models (broken ones with their error), the selected model's card,
and Verify / Install… buttons that run on thread jobs."""

from __future__ import annotations

import logging
from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
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
from .jobs_qt import JobsModel

log = logging.getLogger(__name__)


class ZooBrowser(QWidget):
    def __init__(self, zoo: Zoo, jobs: JobsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.zoo = zoo
        self.jobs = jobs
        self.entries: list[ZooEntry] = []
        self._status: dict[str, str] = {}  # model id → verification result (HTML)
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._show)
        self.card = QTextBrowser()
        self.card.setOpenLinks(False)
        self.card.document().setDefaultStyleSheet(STYLE)
        self.verify_button = QPushButton("Verify")
        self.verify_button.setToolTip("Check the model file's size and sha256 against its card")
        self.verify_button.clicked.connect(self.verify_selected)
        self.install_button = QPushButton("Install…")
        self.install_button.setToolTip("Install a model folder (card.toml + model.onnx) into your model zoo")
        self.install_button.clicked.connect(self._install_clicked)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.count_label = QLabel()
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
        layout.addWidget(self.count_label)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        zoo.on_change(lambda: jobs.dispatch(self.refresh))
        self.refresh()

    # listing -----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        current = self.selected_id()
        self.entries = self.zoo.entries()
        self.list.blockSignals(True)
        self.list.clear()
        for e in self.entries:
            if e.card is not None:
                text = f"{e.id}  ·  {e.card.task}  ·  v{e.card.version}"
            else:
                text = f"{e.id}  ·  broken"
            item = QListWidgetItem(("" if e.card else "⚠ ") + text)
            if e.card is None:
                item.setForeground(QBrush(QColor("#c0392b")))
                item.setToolTip(e.error or "")
            self.list.addItem(item)
        self.list.blockSignals(False)
        broken = sum(e.card is None for e in self.entries)
        self.count_label.setText(f"{len(self.entries)} model(s) installed" + (f", {broken} broken" if broken else ""))
        ids = [e.id for e in self.entries]
        self.list.setCurrentRow(ids.index(current) if current in ids else (0 if ids else -1))
        self._show(self.list.currentRow())

    def selected_id(self) -> str | None:
        row = self.list.currentRow()
        return self.entries[row].id if 0 <= row < len(self.entries) else None

    def select(self, model_id: str) -> None:
        self.list.setCurrentRow([e.id for e in self.entries].index(model_id))

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.entries):
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

    def _install_clicked(self) -> None:
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
