"""The About dialog (versions of the app and its libraries, licences) and the "Plug-in problems" dialog."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from html import escape

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.core import paths

NOTICE = "Research use only — not a diagnostic device. Do not use its output for clinical decisions."


@dataclass
class Problem:
    """A plug-in that did not load, or whose engine or widget failed to build."""

    name: str
    where: str
    message: str


# libraries whose version the About box shows (distribution name → shown name)
LIBRARIES = {"onnxruntime": "onnxruntime", "numpy": "NumPy", "pyqtgraph": "pyqtgraph",
             "opencv-python-headless": "OpenCV", "opencv-python": "OpenCV", "scipy": "SciPy", "h5py": "h5py",
             "pydicom": "pydicom", "wfdb": "wfdb", "torch": "PyTorch (training only)"}


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    except Exception as e:  # an about box must open even with a broken install
        return f"unavailable ({e.__class__.__name__})"


def versions() -> dict[str, str]:
    out = {"Vitascope": __version__, "Python": platform.python_version(), "Qt": qVersion(),
           "PySide6": pyside_version}
    for dist, shown in LIBRARIES.items():
        v = _dist_version(dist)
        if v is not None and shown not in out:
            out[shown] = v
    if "onnxruntime" not in out:
        out["onnxruntime"] = "not installed"
    return out


def licences_markdown() -> str:
    path = paths.resources_dir() / "licenses" / "README.md"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return "Vitascope itself: MIT. The licence notes of the bundled libraries are missing from this install."


def about_html() -> str:
    rows = "".join(f"<tr><td><b>{escape(k)}</b>&nbsp;&nbsp;</td><td>{escape(v)}</td></tr>"
                   for k, v in versions().items())
    return (f"<h3>Vitascope {escape(__version__)}</h3>"
            "<p>Compressed tiny Vision Transformers at work for imaging labs.</p>"
            f"<table>{rows}</table><p><b>{escape(NOTICE)}</b></p>")


class AboutDialog(QDialog):
    """Versions on top, the licences below (scrollable); sized to fit the screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Vitascope")
        text = QLabel(about_html())
        text.setWordWrap(True)
        text.setTextInteractionFlags(text.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.licences = QTextBrowser()
        self.licences.setAccessibleName("Licences")
        self.licences.setMarkdown(licences_markdown())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(QLabel("<b>Licences</b>"))
        layout.addWidget(self.licences, 1)
        layout.addWidget(buttons)
        screen = (parent.screen() if parent is not None else self.screen()).availableGeometry()
        self.resize(min(560, screen.width() - 40), min(600, screen.height() - 60))

    def licence_text(self) -> str:
        return self.licences.toPlainText()


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
