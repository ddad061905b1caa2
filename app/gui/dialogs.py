"""The About dialog and the "Plug-in problems" dialog."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from html import escape

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from app import __version__

NOTICE = "Research use only — not a diagnostic device. Do not use its output for clinical decisions."


@dataclass
class Problem:
    """A plug-in that did not load, or whose engine or widget failed to build."""

    name: str
    where: str
    message: str


def versions() -> dict[str, str]:
    try:
        import onnxruntime

        ort = onnxruntime.__version__
    except Exception as e:  # an about box must open even with a broken runtime
        ort = f"unavailable ({e.__class__.__name__})"
    return {"Vitascope": __version__, "Python": platform.python_version(), "Qt": qVersion(),
            "PySide6": pyside_version, "onnxruntime": ort}


def about_html() -> str:
    rows = "".join(f"<tr><td><b>{escape(k)}</b>&nbsp;&nbsp;</td><td>{escape(v)}</td></tr>"
                   for k, v in versions().items())
    return (f"<h3>Vitascope {escape(__version__)}</h3>"
            "<p>Compressed tiny Vision Transformers at work for imaging labs.</p>"
            f"<table>{rows}</table><p><b>{escape(NOTICE)}</b></p>")


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Vitascope")
        text = QLabel(about_html())
        text.setWordWrap(True)
        text.setMinimumWidth(380)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(buttons)


class ProblemsDialog(QDialog):
    """Lists plug-in problems; non-modal so it never blocks start-up (or a smoke run)."""

    def __init__(self, problems: list[Problem], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Plug-in problems")
        self.resize(720, 300)
        intro = QLabel("These plug-ins could not be loaded. The rest of Vitascope works normally."
                       if problems else "All plug-ins loaded.")
        intro.setWordWrap(True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Plug-in", "Target", "Problem"])
        self.tree.setRootIsDecorated(False)
        self.tree.setWordWrap(True)
        for p in problems:
            item = QTreeWidgetItem([p.name, p.where, p.message])
            item.setToolTip(2, p.message)
            self.tree.addTopLevelItem(item)
        for col in (0, 1):
            self.tree.resizeColumnToContents(col)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.tree)
        layout.addWidget(buttons)

    def rows(self) -> list[tuple[str, str, str]]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [(it.text(0), it.text(1), it.text(2)) for it in items]

    def messages(self) -> list[str]:
        return [r[2] for r in self.rows()]
