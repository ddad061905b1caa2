"""Help inside the app, offline: the user guide (resources/help/guide.html) and the keyboard-shortcuts list."""

from __future__ import annotations

import logging
from html import escape

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from app.core import paths

log = logging.getLogger(__name__)

# keys every window has, listed after the menu shortcuts
STANDARD_KEYS = (
    ("Anywhere", "Move the keyboard focus to the next / previous control", "Tab / Shift+Tab"),
    ("Anywhere", "Press the focused button, tick the focused box", "Space"),
    ("Anywhere", "Open a menu (File, View, Models, Jobs, Help)", "Alt+underlined letter, or F10"),
    ("Tabs", "Next / previous plug-in tab", "Ctrl+Tab / Ctrl+Shift+Tab"),
    ("Lists and tables", "Move the selection", "Arrow keys, Page Up / Page Down, Home / End"),
    ("Jobs panel", "Cancel the selected running job", "Delete"),
    ("Dialogs", "Close", "Esc"),
)


def guide_html() -> str:
    path = paths.resources_dir() / "help" / "guide.html"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        log.warning("%s: cannot read the user guide (%s)", path, e)
        return f"<h2>User guide</h2><p>The guide file is missing from this installation ({escape(str(path))}).</p>"


def shortcuts_html(rows: list[tuple[str, str, str]]) -> str:
    """A table of (where, what, keys): the window's menu shortcuts, then the keys every window has."""
    body = "".join(f"<tr><td>{escape(where)}</td><td>{escape(what)}</td><td><b>{escape(keys)}</b></td></tr>"
                   for where, what, keys in [*rows, *STANDARD_KEYS])
    return ("<h2>Keyboard shortcuts</h2>"
            "<table cellspacing='0' cellpadding='4' width='100%'>"
            "<tr><th align='left'>Where</th><th align='left'>What</th><th align='left'>Keys</th></tr>"
            f"{body}</table>"
            "<p>A plug-in tab may add its own keys; its buttons' tooltips name them.</p>")


class HelpDialog(QDialog):
    """A resizable, non-modal page of help text."""

    def __init__(self, title: str, html: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setAccessibleName(title)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.set_html(html)
        screen = (parent.screen() if parent is not None else self.screen()).availableGeometry()
        self.resize(min(680, screen.width() - 40), min(640, screen.height() - 60))

    def set_html(self, html: str) -> None:
        self.browser.setHtml(html)

    def text(self) -> str:
        return self.browser.toPlainText()
