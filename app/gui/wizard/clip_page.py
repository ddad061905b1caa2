"""Wizard page for a task with its own job (a "clip" problem: compress a CLIP model): the teacher checkpoint, the
captioned images (training and optional validation captions JSON), the student size, the run's knobs and where the
result goes; it takes the place of the Data, Starting point and Recipe pages."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.core.errors import BadInput
from app.core.wizard_clip import PRESETS, read_captions
from app.core.wizard_spec import default_out_dir

from .common import ERROR_STYLE, MUTED_STYLE, OK_STYLE, combo, form_box, int_spin, message_label, on_edit, show_problems
from .pages import WizardPage

ACTS = (("gelu", "GELU (open_clip, TinyCLIP)"), ("quick_gelu", "QuickGELU (OpenAI's original weights)"))


class ClipPage(WizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("2 · Teacher, captions and student",
                         "The CLIP model you own teaches a smaller student that inherits its weights; both are "
                         "scored on validation captions.", parent)
        self._loading = False
        self._checked: tuple[str, ...] | None = None
        self.data_ok = False
        self.teacher, self.captions, self.images = QLineEdit(), QLineEdit(), QLineEdit()
        self.val_captions, self.val_images = QLineEdit(), QLineEdit()
        self.teacher.setPlaceholderText("open_clip or TinyCLIP checkpoint (.pt)")
        self.captions.setPlaceholderText('JSON list of {"image": FILE, "caption": TEXT}')
        self.images.setPlaceholderText("folder holding the captions' image files")
        self.val_captions.setPlaceholderText("optional: without it a tenth of the training images is held out")
        self.val_images.setPlaceholderText("optional: default the training images folder")
        self.act = combo(ACTS)
        teacher_box = form_box("Teacher", ("Checkpoint", self._browse_row(self.teacher, "file")),
                               ("MLP activation", self.act))
        self.data_info = message_label()
        data_box = form_box("Captioned images", ("Training captions", self._browse_row(self.captions, "json")),
                            ("Images folder", self._browse_row(self.images, "dir")),
                            ("Validation captions", self._browse_row(self.val_captions, "json")),
                            ("Validation images", self._browse_row(self.val_images, "dir")), self.data_info)

        self.preset = combo((k, f"{k}: {v[0]}") for k, v in PRESETS.items())
        self.steps = int_spin(1, 1_000_000, 50)
        self.batch = int_spin(2, 4096)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.threads = int_spin(1, 64)
        self.seed = int_spin(0, 2**31 - 1)
        run_box = form_box("Student and training", ("Student size", self.preset), ("Steps", self.steps),
                           ("Batch size", self.batch), ("Learning rate", self.lr), ("Torch threads", self.threads),
                           ("Seed", self.seed))
        self.model_id = QLineEdit()
        self.out_dir = QLineEdit()
        out_box = form_box("Result", ("Model id", self.model_id), ("Output folder", self._browse_row(self.out_dir,
                                                                                                      "out")))
        self.problems = message_label()
        cols = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(teacher_box)
        left.addWidget(data_box)
        right = QVBoxLayout()
        right.addWidget(run_box)
        right.addWidget(out_box)
        right.addStretch(1)
        cols.addLayout(left, 3)
        cols.addLayout(right, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(cols)
        layout.addWidget(self.problems)
        layout.addStretch(1)
        on_edit(self._changed, self.teacher, self.captions, self.images, self.val_captions, self.val_images,
                self.act, self.preset, self.steps, self.batch, self.lr, self.threads, self.seed, self.model_id,
                self.out_dir)

    def _browse_row(self, edit: QLineEdit, kind: str) -> QHBoxLayout:
        button = QPushButton("Browse…")
        button.clicked.connect(lambda: self._browse(edit, kind))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(button)
        return row

    def _browse(self, edit: QLineEdit, kind: str) -> None:
        if kind in ("dir", "out"):
            path = QFileDialog.getExistingDirectory(self, "Folder", edit.text())
        else:
            filters = "Checkpoints (*.pt *.pth *.bin);;All files (*)" if kind == "file" else \
                "Captions (*.json);;All files (*)"
            path, _ = QFileDialog.getOpenFileName(self, "File", edit.text(), filters)
        if path:
            edit.setText(path)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        spec = self.wiz.spec
        c = spec.clip
        self._loading = True
        for edit, value in ((self.teacher, c.teacher), (self.captions, c.captions), (self.images, c.images),
                            (self.val_captions, c.val_captions), (self.val_images, c.val_images),
                            (self.model_id, spec.model_id), (self.out_dir, spec.out_dir or
                                                             default_out_dir(spec.model_id))):
            edit.setText(value)
        self.act.setCurrentIndex(max(0, self.act.findData(c.act)))
        self.preset.setCurrentIndex(max(0, self.preset.findData(c.preset)))
        self.steps.setValue(c.steps)
        self.batch.setValue(c.batch_size)
        self.lr.setValue(c.lr)
        self.threads.setValue(c.threads)
        self.seed.setValue(spec.seed)
        self._loading = False
        self._changed()

    def _changed(self, *_: object) -> None:
        if self._loading:
            return
        spec = self.wiz.spec
        c = spec.clip
        c.teacher, c.captions, c.images = (e.text().strip() for e in (self.teacher, self.captions, self.images))
        c.val_captions, c.val_images = self.val_captions.text().strip(), self.val_images.text().strip()
        c.act, c.preset = self.act.currentData() or "gelu", self.preset.currentData() or "half"
        c.steps, c.batch_size, c.lr, c.threads = self.steps.value(), self.batch.value(), self.lr.value(), \
            self.threads.value()
        spec.seed = self.seed.value()
        spec.model_id, spec.out_dir = self.model_id.text().strip(), self.out_dir.text().strip()
        self._check_data()
        show_problems(self.problems, spec.problems())
        self.completeChanged.emit()

    def _check_data(self) -> None:
        """Read the captions JSON files and look for every image, when their paths changed."""
        c = self.wiz.spec.clip
        paths = (c.captions, c.images, c.val_captions, c.val_images)
        if paths == self._checked:
            return
        self._checked = paths
        self.data_ok = False
        if not (c.captions and c.images):
            self.data_info.setStyleSheet(MUTED_STYLE)
            self.data_info.setText("choose the training captions and their images folder")
            return
        try:
            rows, names = read_captions(c.captions, c.images)
            text = f"training: {len(names)} images, {len(rows)} captions"
            if c.val_captions:
                vrows, vnames = read_captions(c.val_captions, c.val_images or c.images)
                text += f" · validation: {len(vnames)} images, {len(vrows)} captions"
            elif len(names) < 8:
                raise BadInput(f"{c.captions}: {len(names)} images; give validation captions or at least 8 images "
                               "(a tenth is held out)")
            else:
                text += f" · validation: {max(4, round(0.1 * len(names)))} of these images held out"
        except BadInput as e:
            self.data_info.setStyleSheet(ERROR_STYLE)
            self.data_info.setText(str(e))
            return
        self.data_ok = True
        self.data_info.setStyleSheet(OK_STYLE)
        self.data_info.setText("✓ " + text)

    def nextId(self) -> int:  # noqa: N802 (Qt override): straight to the run
        return self.wiz.page_id("run")

    def isComplete(self) -> bool:  # noqa: N802
        return self.data_ok and not self.wiz.spec.problems()
