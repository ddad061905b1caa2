"""Wizard pages 1-3: Task (from the installed plug-ins), Data (simulate or pick a folder / HDF5; counts, thumbnails,
split, leakage refused) and Starting point (a new architecture or a zoo model)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from app.core.wizard_data import DataSummary, summarize
from app.core.wizard_spec import ARCHITECTURES, default_out_dir

from .common import ERROR_STYLE, MUTED_STYLE, OK_STYLE, form_box, int_spin, message_label, on_edit, pixmap_from_rgb

if TYPE_CHECKING:
    from .wizard import TrainingWizard

PREVIEW_LIMIT = 1000  # simulated data up to this many samples is generated in full for the preview
THUMB_PX, THUMBS_PER_ROW = 80, 8


class WizardPage(QWizardPage):
    """A page with typed access to the wizard and its spec, titled on construction."""

    def __init__(self, title: str, subtitle: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(title)
        self.setSubTitle(subtitle)

    @property
    def wiz(self) -> TrainingWizard:
        return self.wizard()  # type: ignore[return-value]

    def validatePage(self) -> bool:  # noqa: N802 (Qt override: QWizard.next() alone does not check)
        return self.isComplete()


# 1 task ----------------------------------------------------------------------------------------------------
class TaskPage(WizardPage):
    def __init__(self, tasks: list[Any], parent: QWidget | None = None) -> None:
        super().__init__("1 · Task",
                         "What should the new model do? The installed plug-ins offer these tasks.", parent)
        self.tasks = tasks
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        for t in tasks:
            item = QListWidgetItem(f"{t.title}\n{t.description}\nplug-in: {t.plugin} · model task: {t.id} · "
                                   f"{t.problem} · metric: {t.metric}")
            item.setData(Qt.ItemDataRole.UserRole, t.id)
            self.list.addItem(item)
        self.list.setMaximumHeight(220)
        self.empty = QLabel("No installed plug-in offers a trainable task." if not tasks else "")
        self.empty.setStyleSheet(ERROR_STYLE)
        steps = QLabel(
            "<b>What happens next</b><ol>"
            "<li><b>Data</b> — generate it with the plug-in's simulator, or bring a folder of labelled images or an "
            "HDF5 stack; identical items never end up in both the training and the test split.</li>"
            "<li><b>Starting point</b> — a new architecture, or a model from the zoo to fine-tune or compress.</li>"
            "<li><b>Recipe</b> — training, distillation, depth reparameterization, quantization, a time budget.</li>"
            "<li><b>Run</b> — in a separate worker process with live curves; cancel any time and resume later.</li>"
            "<li><b>Evaluate</b> — against the parent on held-out data: metric, latency, size.</li>"
            "<li><b>Install</b> — into your model zoo; the plug-in offers it at once.</li></ol>"
            "The same run can be saved as a recipe and repeated headless: <tt>vitascope train RECIPE.toml</tt>.")
        steps.setWordWrap(True)
        steps.setTextFormat(Qt.TextFormat.RichText)
        self.steps = steps
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(self.empty)
        layout.addWidget(steps)
        layout.addStretch(1)
        self.list.currentRowChanged.connect(self._chosen)

    def initializePage(self) -> None:  # noqa: N802 (Qt override)
        spec = self.wiz.spec
        ids = [t.id for t in self.tasks]
        if spec.task is not None and spec.task.id in ids:
            self.list.setCurrentRow(ids.index(spec.task.id))
        elif self.tasks:
            self.list.setCurrentRow(0)

    def select(self, task_id: str) -> None:
        self.list.setCurrentRow([t.id for t in self.tasks].index(task_id))

    def _chosen(self, row: int) -> None:
        if 0 <= row < len(self.tasks):
            spec = self.wiz.spec
            if spec.task is None or spec.task.id != self.tasks[row].id:
                spec.set_task(self.tasks[row])
                spec.out_dir = default_out_dir(spec.model_id)
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return self.wiz.spec.task is not None


# 2 data ----------------------------------------------------------------------------------------------------
class DataPage(WizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("2 · Data",
                         "Generate labelled data with the plug-in's simulator, or use your own folder of labelled "
                         "images (one sub-folder per class) or HDF5 stack.", parent)
        self.summary: DataSummary | None = None
        self._busy = False
        self._loading = False

        self.sim = QRadioButton("Generate with the simulator")
        self.folder = QRadioButton("Folder of labelled images")
        self.hdf5 = QRadioButton("HDF5 stack (/images or /holograms + /labels or /z_m)")
        self.group = QButtonGroup(self)
        for i, b in enumerate((self.sim, self.folder, self.hdf5)):
            self.group.addButton(b, i)
        self.path = QLineEdit()
        self.path.setPlaceholderText("folder or .h5 file")
        self.browse = QPushButton("Browse…")
        self.seed = int_spin(0, 2**31 - 1)
        self.n_train = int_spin(8, 10_000_000, 500)
        self.n_val = int_spin(4, 1_000_000, 100)
        self.size = int_spin(16, 512, 8)
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.preview_button = QPushButton("Preview && check")

        src = QGroupBox("Source")
        sl = QGridLayout(src)
        sl.addWidget(self.sim, 0, 0, 1, 3)
        sl.addWidget(self.folder, 1, 0, 1, 3)
        sl.addWidget(self.hdf5, 2, 0, 1, 3)
        sl.addWidget(self.path, 3, 0, 1, 2)
        sl.addWidget(self.browse, 3, 2)
        params = form_box("Size and split", ("Seed", self.seed), ("Training samples", self.n_train),
                          ("Validation samples", self.n_val), ("Image size (px)", self.size),
                          ("Validation fraction", self.val_fraction))
        top = QHBoxLayout()
        top.addWidget(src, 3)
        top.addWidget(params, 2)

        self.info = message_label()
        self.thumbs = QWidget()
        self.thumb_grid = QGridLayout(self.thumbs)
        self.thumb_grid.setContentsMargins(0, 0, 0, 0)
        self.thumb_grid.setHorizontalSpacing(6)
        self.verdict = message_label()
        row = QHBoxLayout()
        row.addWidget(self.preview_button)
        row.addWidget(self.verdict, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(row)
        layout.addWidget(self.info)
        layout.addWidget(self.thumbs)
        layout.addStretch(1)

        self.group.idToggled.connect(self._source_changed)
        on_edit(self._changed, self.seed, self.n_train, self.n_val, self.size, self.val_fraction, self.path)
        self.browse.clicked.connect(self._browse)
        self.preview_button.clicked.connect(self.preview)

    def initializePage(self) -> None:  # noqa: N802
        spec = self.wiz.spec
        t = spec.task
        params = spec.data_params()
        self._loading = True
        {"simulate": self.sim, "folder": self.folder, "hdf5": self.hdf5}[spec.data.source].setChecked(True)
        self.seed.setValue(spec.data.seed)
        self.n_train.setValue(int(params.get(t.count_param, 1000)) if t.count_param else 0)
        self.n_val.setValue(int(params.get(t.val_param, 100)) if t.val_param else 0)
        self.size.setValue(spec.image_size())
        self.val_fraction.setValue(spec.data.val_fraction)
        self.path.setText(spec.data.path)
        self.n_train.setToolTip(f"the simulator's '{t.count_param}'" if t.count_param else "")
        self.n_val.setToolTip(f"the simulator's '{t.val_param}'" if t.val_param else "")
        self._loading = False
        self._source_changed()
        if self.summary is None:
            self.preview()

    def _source_changed(self, *_: object) -> None:
        sim = self.sim.isChecked()
        t = self.wiz.spec.task
        self.path.setEnabled(not sim)
        self.browse.setEnabled(not sim)
        self.n_train.setEnabled(sim and bool(t and t.count_param))
        self.n_val.setEnabled(sim and bool(t and t.val_param))
        self.size.setEnabled(bool(t and t.image_size_param) or not sim)
        self.val_fraction.setEnabled(not sim)
        self._changed()

    def _changed(self, *_: object) -> None:
        if self._loading:
            return
        d = self.wiz.spec.data
        d.source = ("simulate", "folder", "hdf5")[max(0, self.group.checkedId())]
        d.seed = self.seed.value()
        d.n_train, d.n_val = self.n_train.value(), self.n_val.value()
        d.image_size = self.size.value() if self.size.isEnabled() else 0
        d.val_fraction = self.val_fraction.value()
        d.path = self.path.text().strip()
        self.summary = None
        self.verdict.setStyleSheet(MUTED_STYLE)
        self.verdict.setText("settings changed: preview to check the data")
        self.completeChanged.emit()

    def _browse(self) -> None:
        if self.folder.isChecked():
            path = QFileDialog.getExistingDirectory(self, "Folder of labelled images")
        else:
            path, _ = QFileDialog.getOpenFileName(self, "HDF5 stack", "", "HDF5 (*.h5 *.hdf5);;All files (*)")
        if path:
            self.path.setText(path)

    def preview(self) -> None:
        """Load the data (or a sample of large simulated sets) on a thread: counts, thumbnails, leakage check."""
        spec = self.wiz.spec
        problems = [p for p in spec.problems() if "data" in p]
        if problems:
            self._show_error(problems[0])
            return
        try:
            table = spec.data_table()
        except Exception as e:
            self._show_error(str(e))
            return
        t = spec.task
        params = dict(table["params"])
        total = spec.data.n_train + spec.data.n_val
        sampled = spec.data.source == "simulate" and total > PREVIEW_LIMIT
        if sampled:
            scale = PREVIEW_LIMIT / total
            for k in (t.count_param, t.val_param):
                if k:
                    params[k] = max(4, int(params.get(k, 0) * scale))
        entry, seed, labels, problem = table["entry"], table["seed"], spec.labels, t.problem

        def job(cancel: Any, emit: Any) -> DataSummary:
            from app.core.wizard_eval import _call_entry

            return summarize(_call_entry(entry, seed, params), labels, problem, n_thumbs=2 * THUMBS_PER_ROW)

        self._busy = True
        self.preview_button.setEnabled(False)
        self.verdict.setStyleSheet(MUTED_STYLE)
        self.verdict.setText("generating / reading the data…")
        self._sampled = sampled
        self.wiz.jobs.run_thread_job("wizard: data preview", job, on_result=self._previewed, on_error=self._failed)
        self.completeChanged.emit()

    def _previewed(self, s: DataSummary) -> None:
        self._busy = False
        self.preview_button.setEnabled(True)
        self.summary = s
        d = self.wiz.spec.data
        text = s.text()
        if self._sampled:
            text = (f"The run generates {d.n_train} training + {d.n_val} validation samples; previewed and checked "
                    f"on a {s.n_train + s.n_val}-sample draw:\n" + text)
        self.info.setText(text)
        while self.thumb_grid.count():
            w = self.thumb_grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for i, (img, cap) in enumerate(zip(s.thumbnails, s.captions, strict=True)):
            pic = QLabel()
            pic.setPixmap(pixmap_from_rgb(img, THUMB_PX))
            pic.setToolTip(cap)
            label = QLabel(cap)
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            row, col = divmod(i, THUMBS_PER_ROW)
            self.thumb_grid.addWidget(pic, 2 * row, col, Qt.AlignmentFlag.AlignHCenter)
            self.thumb_grid.addWidget(label, 2 * row + 1, col)
        self.thumb_grid.setColumnStretch(THUMBS_PER_ROW, 1)
        if s.leaks:
            self._show_error(f"refused: {s.leaks} identical sample(s) are in both the training and the validation "
                             "split (data leakage). Remove the duplicates or change the split.")
        else:
            self.verdict.setStyleSheet(OK_STYLE)
            self.verdict.setText("✓ data ready: no identical content on both sides of the split")
        self.completeChanged.emit()

    def _failed(self, message: str) -> None:
        self._busy = False
        self.preview_button.setEnabled(True)
        self.summary = None
        self._show_error(message)

    def _show_error(self, text: str) -> None:
        self.verdict.setStyleSheet(ERROR_STYLE)
        self.verdict.setText(text)
        self.completeChanged.emit()

    @property
    def busy(self) -> bool:
        return self._busy

    def isComplete(self) -> bool:  # noqa: N802
        return self.summary is not None and not self.summary.leaks and not self._busy


# 3 starting point ------------------------------------------------------------------------------------------
class StartPage(WizardPage):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("3 · Starting point",
                         "Start a new architecture from scratch, or start from a model in the zoo (its weights to "
                         "fine-tune, or as the teacher to compress).", parent)
        self._loading = False
        self.new = QRadioButton("New architecture")
        self.zoo = QRadioButton("Model from the zoo")
        self.group = QButtonGroup(self)
        self.group.addButton(self.new, 0)
        self.group.addButton(self.zoo, 1)
        self.arch = QComboBox()
        self.arch.addItems(list(ARCHITECTURES))
        self.depth = int_spin(1, 24)
        self.width = int_spin(8, 1024, 8)
        self.heads = int_spin(1, 16)
        self.params = QLabel()
        self.models = QListWidget()
        self.models.setMinimumHeight(80)
        self.models.setMaximumHeight(140)
        self.problems = message_label()

        arch_box = form_box("", ("Family", self.arch), ("Blocks (depth)", self.depth), ("Width", self.width),
                            ("Attention heads", self.heads), ("Parameters", self.params))
        layout = QVBoxLayout(self)
        layout.addWidget(self.new)
        layout.addWidget(arch_box)
        layout.addWidget(self.zoo)
        layout.addWidget(self.models)
        layout.addWidget(self.problems)
        layout.addStretch(1)
        self.arch_box = arch_box

        self.group.idToggled.connect(self._changed)
        self.arch.currentTextChanged.connect(self._arch_changed)
        on_edit(self._changed, self.depth, self.width, self.heads)
        self.models.currentRowChanged.connect(self._changed)

    def initializePage(self) -> None:  # noqa: N802
        spec = self.wiz.spec
        self._loading = True
        self.models.clear()
        for card in self.wiz.zoo.cards(spec.task.id):
            folder = self.wiz.zoo.entry(card.id).folder
            has_ckpt = (folder / "checkpoint.pt").is_file()
            item = QListWidgetItem(f"{card.id}  ·  {card.params:,} params  ·  "
                                   + ("torch checkpoint: can fine-tune / teach" if has_ckpt
                                      else "ONNX only: can be compared, not trained further"))
            item.setData(Qt.ItemDataRole.UserRole, (card.id, str(folder), has_ckpt))
            self.models.addItem(item)
        self.zoo.setEnabled(self.models.count() > 0)
        zoo_first = spec.start.kind == "zoo" or bool(spec.task.job)  # a task with its own job fine-tunes only
        (self.zoo if zoo_first and self.models.count() else self.new).setChecked(True)
        self.arch.setCurrentText(spec.start.arch if spec.start.arch in ARCHITECTURES else "vit-micro")
        cfg = spec.model_config()
        self.depth.setValue(int(cfg["depth"]))
        self.width.setValue(int(cfg["width"]))
        self.heads.setValue(int(cfg["heads"]))
        ids = [self.models.item(i).data(Qt.ItemDataRole.UserRole)[0] for i in range(self.models.count())]
        if spec.start.model_id in ids:
            self.models.setCurrentRow(ids.index(spec.start.model_id))
        elif ids:
            self.models.setCurrentRow(0)
        self._loading = False
        self._changed()

    def _arch_changed(self, name: str) -> None:
        if self._loading or name not in ARCHITECTURES:
            return
        base = ARCHITECTURES[name]
        self._loading = True
        self.depth.setValue(int(base["depth"]))
        self.width.setValue(int(base["width"]))
        self.heads.setValue(int(base["heads"]))
        self._loading = False
        self._changed()

    def _changed(self, *_: object) -> None:
        if self._loading:
            return
        spec = self.wiz.spec
        s = spec.start
        s.kind = "zoo" if self.zoo.isChecked() else "new"
        s.arch = self.arch.currentText()
        s.overrides = {**{k: v for k, v in s.overrides.items() if k not in ("depth", "width", "heads")},
                       "depth": self.depth.value(), "width": self.width.value(), "heads": self.heads.value()}
        item = self.models.currentItem()
        if item is not None:
            s.model_id, s.model_dir, s.has_checkpoint = item.data(Qt.ItemDataRole.UserRole)
        if s.kind == "new" and spec.recipe.mode != "train":
            spec.recipe.mode = "train"
        elif s.kind == "zoo" and spec.recipe.mode == "train":
            spec.recipe.mode = "finetune" if s.has_checkpoint else "none"
        self.arch_box.setEnabled(s.kind == "new")
        self.models.setEnabled(s.kind == "zoo")
        self.params.setText(f"≈ {spec.approx_params():,}")
        probs = []
        if s.kind == "zoo" and not s.has_checkpoint:
            probs.append(f"{s.model_id} ships no torch checkpoint: it can be the comparison on the Evaluate page, "
                         "not a starting point. Choose a new architecture (the zoo model stays the reference).")
        if s.kind == "new" and spec.task.job:
            probs.append(f"{spec.task.title} fine-tunes a model from the zoo: choose one that ships a checkpoint.")
        elif s.kind == "new":
            cfg = spec.model_config()
            if int(cfg["width"]) % int(cfg["heads"]):
                probs.append(f"width {cfg['width']} is not divisible by {cfg['heads']} heads")
        self.problems.setStyleSheet(ERROR_STYLE)
        self.problems.setText("\n".join(probs))
        self._ok = not probs
        self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return getattr(self, "_ok", False)


