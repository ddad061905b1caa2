"""Wizard page 7: install the new model into the zoo (atomic, verified) with its complete card; the plug-in that
uses its task sees it at once through the zoo's change notification."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from app.core.card import ModelCard, read_card
from app.core.errors import VitascopeError

from .common import ERROR_STYLE, OK_STYLE, message_label
from .pages import WizardPage


def card_html(card: ModelCard) -> str:
    sha = card.sha256 or next((a.sha256 for a in card.artifacts), "")
    metrics = "".join(f"<li>{m.get('name')}: {m.get('value')} <small>({m.get('dataset', '')})</small></li>"
                      for m in card.metrics)
    prov = "".join(f"<li>{k}: {v}</li>" for k, v in card.provenance.items()
                   if not isinstance(v, dict) and k not in ("data_params",))
    return (f"<h3>{card.id} <small>v{card.version} · {card.task} · {card.license}</small></h3>"
            f"<p>{card.description}</p>"
            f"<p><b>{card.params or card.arch.get('params', 0):,}</b> params · <b>{card.total_bytes / 1024:.0f} kB"
            f"</b> · latency <b>{card.latency.get('ms', card.latency.get('image_ms', '?'))} ms</b> (batch 1, "
            f"{card.latency.get('threads', 2)} threads) · sha256 {sha[:16]}…</p>"
            f"<p><b>Metrics</b></p><ul>{metrics}</ul><p><b>Provenance</b></p><ul>{prov}</ul>")


class InstallPage(WizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("7 · Install",
                         "Install the model into your zoo. The plug-in offers it immediately — no restart.", parent)
        self.installed: ModelCard | None = None
        self.card_view = QTextBrowser()
        self.replace = QCheckBox("Replace an installed model with the same id")
        self.install_button = QPushButton("Install into the zoo")
        self.status = message_label()
        row = QHBoxLayout()
        row.addWidget(self.replace, 1)
        row.addWidget(self.install_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.card_view, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self.install_button.clicked.connect(self.install)
        self.setFinalPage(True)

    def initializePage(self) -> None:  # noqa: N802
        folder = self.wiz.run_page.model_dir
        try:
            card = read_card(folder)
        except (VitascopeError, TypeError) as e:
            self.card_view.setPlainText(f"no model to install: {e}")
            self.install_button.setEnabled(False)
            return
        self.card_view.setHtml(card_html(card))
        self.replace.setChecked(any(c.id == card.id for c in self.wiz.zoo.cards()))
        self.install_button.setEnabled(self.installed is None)

    def install(self) -> ModelCard | None:
        folder = self.wiz.run_page.model_dir
        try:
            card = self.wiz.zoo.install(folder, replace=self.replace.isChecked())
        except VitascopeError as e:
            self.status.setStyleSheet(ERROR_STYLE)
            self.status.setText(f"Not installed: {e}")
            return None
        self.installed = card
        users = [t.plugin for t in [self.wiz.spec.task] if t]
        offered = [c.id for c in self.wiz.zoo.cards(card.task)]
        self.status.setStyleSheet(OK_STYLE)
        self.status.setText(f"✓ Installed {card.id} into {self.wiz.zoo.install_root}. The {', '.join(users)} plug-in "
                            f"now offers: {', '.join(offered)}.")
        self.install_button.setEnabled(False)
        self.completeChanged.emit()
        return card

    def isComplete(self) -> bool:  # noqa: N802
        return True  # Finish without installing is allowed: the model folder stays in the output folder
