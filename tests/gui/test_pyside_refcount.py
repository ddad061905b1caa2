"""Guards the PySide6 pin: 6.12.0 on Python 3.11 drops a reference to None on every call returning it, so a
live view aborts with "none_dealloc" after some 10⁴ calls. An installed PySide6 must not leak."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QPushButton


def test_qt_calls_do_not_leak_references_to_none(qtbot):
    button = QPushButton()
    qtbot.addWidget(button)
    before = sys.getrefcount(None)
    for _ in range(2000):
        button.setText("x")
    assert sys.getrefcount(None) - before > -100, "this PySide6 leaks references to None; keep it pinned <6.12"
