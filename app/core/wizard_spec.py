"""The training wizard's one Qt-free object, WizardSpec: every page edits it; it becomes the JobSpec a worker runs
(`vitascope worker SPEC.json`) and the recipe TOML `vitascope train RECIPE.toml` runs headless."""

from __future__ import annotations

import math
import shutil
import tomllib
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import paths
from .errors import BadInput
from .jobs import JobSpec
from .plugin_api import TrainTask
from .problems import problem
from .wizard_clip import ClipChoice

WIZARD_JOB = "app.train.wizard_job:run"
RECIPE_FILE = "recipe.toml"
DISTILL = ("", "kd", "nkd", "uskd", "logits")
QUANT = ("", "int8", "w6a6-repq", "w4a4-repq", "w6a6-sulq", "w4a4-sulq")
SOURCES = ("simulate", "folder", "hdf5")
MIN_FREE_BYTES = 50 * 2**20
STARTUP_S = 6.0  # worker start: python + torch import + data (measured ~4-6 s on the shared 2-core machine)

# Mirror of app.train.arch's registry (torch-free, for the GUI); tests/core/test_wizard_spec.py checks it.
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "vit-micro": dict(img_size=64, patch=8, width=64, depth=2, heads=2, mlp_ratio=2.0, num_outputs=4),
    "vit-mini": dict(img_size=64, patch=8, width=96, depth=4, heads=3, mlp_ratio=2.0, num_outputs=4),
    "vit-small64": dict(img_size=64, patch=8, width=128, depth=6, heads=4, mlp_ratio=3.0, num_outputs=4),
    "tvit": dict(img_size=128, patch=16, width=128, depth=12, heads=8, mlp_dim=1024, num_outputs=1,
                 head="regression", dropout=0.1),
    "vit-tiny": dict(img_size=224, patch=16, width=192, depth=12, heads=3, mlp_ratio=4.0, num_outputs=1000),
}


def available_tasks(plugins: list[Any]) -> list[TrainTask]:
    """Trainable tasks of the loaded plug-ins: what each declares in `info.train_tasks` (from its manifest)."""
    out: dict[str, TrainTask] = {}
    for p in plugins:
        for t in tuple(getattr(p.info, "train_tasks", ()) or ()):
            out.setdefault(t.id, t)
    return list(out.values())


def load_task_recipe(task: TrainTask) -> dict[str, Any]:
    """The task's shipped recipe TOML as a dict ({} when it has none or it is unreadable)."""
    if not task.recipe:
        return {}
    p = Path(task.recipe)
    p = p if p.is_absolute() else paths.install_root() / p
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def approx_params(cfg: dict[str, Any]) -> int:
    """Parameter count of a ViT config (patch stem), from the formula; the wizard's size estimate."""
    w, d, p, c = int(cfg["width"]), int(cfg["depth"]), int(cfg["patch"]), int(cfg.get("in_chans", 3))
    h = int(cfg.get("mlp_dim") or round(w * float(cfg.get("mlp_ratio", 4.0))))
    tokens = (int(cfg["img_size"]) // p) ** 2 + 1
    block = 2 * 2 * w + (3 * w * w + 3 * w) + (w * w + w) + (w * h + h) + (h * w + w)
    out = int(cfg["num_outputs"])
    return c * p * p * w + w + tokens * w + d * block + 2 * w + w * out + out


def step_cost(cfg: dict[str, Any], batch: int) -> float:
    """A relative cost of one training step (multiply-adds per batch), to scale a measured s/step."""
    w, d, p = int(cfg["width"]), int(cfg["depth"]), int(cfg["patch"])
    h = int(cfg.get("mlp_dim") or round(w * float(cfg.get("mlp_ratio", 4.0))))
    n = (int(cfg["img_size"]) // p) ** 2 + 1
    return float(batch) * d * n * (4 * w * w + 2 * w * h + 2 * n * w)


def check_output_dir(path: str | Path) -> str | None:
    """None when `path` can be created and written with some room to spare; else a one-line reason."""
    p = Path(path).expanduser()
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        return f"{p}: the output folder cannot be written ({e.strerror or e.__class__.__name__})"
    free = shutil.disk_usage(p).free
    if free < MIN_FREE_BYTES:
        return f"{p}: only {free / 2**20:.0f} MB free; checkpoints and the model need at least " \
               f"{MIN_FREE_BYTES // 2**20} MB"
    return None


@dataclass
class DataChoice:
    source: str = "simulate"  # simulate | folder | hdf5
    seed: int = 1
    n_train: int = 0  # 0: the task's default
    n_val: int = 0
    image_size: int = 0  # 0: the task's default
    path: str = ""  # folder or HDF5 file
    val_fraction: float = 0.2


@dataclass
class StartChoice:
    kind: str = "new"  # new (an architecture) | zoo (an installed model)
    arch: str = "vit-micro"
    overrides: dict[str, Any] = field(default_factory=dict)  # depth, width, heads, ...
    model_id: str = ""
    model_dir: str = ""  # the zoo model's folder
    has_checkpoint: bool = False  # the zoo model ships checkpoint.pt (needed as init or teacher)


@dataclass
class RecipeChoice:
    mode: str = "train"  # train (from scratch) | finetune (from the zoo model) | none (compress the zoo model only)
    steps: int = 0  # 0: the recipe's
    batch_size: int = 0
    lr: float = 0.0
    threads: int = 2
    distill: str = ""  # kd | nkd | uskd | logits (sparse teacher logits); needs reparam_depth
    reparam_depth: int = 0
    distill_steps: int = 200
    quant: str = ""  # int8 (deployed) | wXaY-repq/sulq (evaluated, fake-quant)
    time_budget_s: float = 0.0
    seconds_per_step: float = 0.0  # measured by the Recipe page (0: unknown)
    measured_cost: float = 0.0  # step_cost() of the configuration that was measured


@dataclass
class WizardSpec:
    """The wizard's state. `task` is a TrainTask; the rest is plain data (see `to_dict`)."""

    task: TrainTask | None = None
    data: DataChoice = field(default_factory=DataChoice)
    start: StartChoice = field(default_factory=StartChoice)
    recipe: RecipeChoice = field(default_factory=RecipeChoice)
    model_id: str = ""
    version: str = "1.0.0"
    license: str = "MIT"
    description: str = ""
    out_dir: str = ""
    seed: int = 0
    resume: bool = False
    clip: ClipChoice = field(default_factory=ClipChoice)  # a "clip" task's inputs (its own wizard page)

    # defaults from the task's shipped recipe --------------------------------------------------------------
    def set_task(self, task: TrainTask) -> None:
        self.task = task
        base = self.base_params()
        self.data = DataChoice(seed=task.default_seed)
        self.start = StartChoice(arch=str(base.get("model", "vit-micro")), overrides=dict(base.get("model_overrides",
                                                                                                  {})))
        r = RecipeChoice()
        r.steps, r.batch_size, r.lr = int(base.get("steps", 1000)), int(base.get("batch_size", 64)), \
            float(base.get("lr", 1e-3))
        self.recipe = r
        stem = task.id.replace(".", "-")
        self.model_id = self.model_id if self.model_id.startswith(stem) else f"{stem}-custom"
        self.description = ""
        if self.page_job:
            self.clip, self.seed = ClipChoice(), task.default_seed

    @property
    def page_job(self) -> str:
        """The job kind of a task whose inputs are on a wizard page of its own ("" for the ViT pipeline's)."""
        return problem(self.task.problem).page_job if self.task else ""

    def base_params(self) -> dict[str, Any]:
        return dict(load_task_recipe(self.task).get("params", {})) if self.task else {}

    def base_export(self) -> dict[str, Any]:
        return dict(self.base_params().get("export", {}))

    # derived values ----------------------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return list(self.base_export().get("labels", []))

    def data_params(self) -> dict[str, Any]:
        t = self._task()
        params = {**dict(self.base_params().get("data", {}).get("params", {})), **t.data_params}
        if self.data.n_train and t.count_param:
            params[t.count_param] = int(self.data.n_train)
        if self.data.n_val and t.val_param:
            params[t.val_param] = int(self.data.n_val)
        if self.data.image_size and t.image_size_param:
            params[t.image_size_param] = int(self.data.image_size)
        return params

    def image_size(self) -> int:
        t = self._task()
        if t.image_size_param:
            return int(self.data.image_size or self.data_params().get(t.image_size_param, 64))
        if self.data.source != "simulate" and self.data.image_size:
            return int(self.data.image_size)
        return int(self.model_config().get("img_size", 64))

    def data_table(self) -> dict[str, Any]:
        """The loop's `data` table: the plug-in simulator, or the folder / HDF5 readers of app.core.wizard_data."""
        d = self.data
        if d.source == "simulate":
            return {"entry": self._task().data_entry, "seed": int(d.seed), "params": self.data_params()}
        if not d.path:
            raise BadInput("data: choose a folder or an HDF5 file")
        entry = "app.core.wizard_data:folder_dataset" if d.source == "folder" else "app.core.wizard_data:hdf5_dataset"
        params: dict[str, Any] = {"path": str(Path(d.path).expanduser().resolve()),
                                  "val_fraction": float(d.val_fraction)}
        if d.source == "folder" and self._task().folder_entry:  # the plug-in reads its own kind of images
            return {"entry": self._task().folder_entry, "seed": int(d.seed), "params": params}
        if d.source == "folder" or d.image_size:
            params["size"] = self.image_size()
        return {"entry": entry, "seed": int(d.seed), "params": params}

    def model_config(self) -> dict[str, Any]:
        """The architecture's config with the overrides, the task's head and output count (torch-free)."""
        base = dict(ARCHITECTURES.get(self.start.arch, ARCHITECTURES["vit-micro"]))
        cfg = {**base, **self.start.overrides}
        if self.task is not None:
            cfg["head"] = self.task.problem
            if problem(self.task.problem).output_per_class and self.labels:
                cfg["num_outputs"] = len(self.labels)
            if self._task().image_size_param and self.data.image_size:
                cfg["img_size"] = int(self.data.image_size)
            elif self.data.source != "simulate" and self.data.image_size:
                cfg["img_size"] = int(self.data.image_size)
        return cfg

    def approx_params(self) -> int:
        return approx_params(self.model_config())

    @property
    def trains(self) -> bool:
        return self.recipe.mode in ("train", "finetune")

    @property
    def compresses(self) -> bool:
        return bool(self.recipe.reparam_depth or self.recipe.quant)

    def effective_steps(self) -> int:
        """The recipe's steps, cut to fit the time budget when a speed is known."""
        r = self.recipe
        steps = max(1, int(r.steps))
        sps = self.seconds_per_step()
        if r.time_budget_s > 0 and sps > 0:
            fit = int((r.time_budget_s - STARTUP_S) / sps)
            steps = max(1, min(steps, fit))
        return steps

    def seconds_per_step(self) -> float:
        """Measured s/step scaled to the current configuration, else 0."""
        r = self.recipe
        if r.seconds_per_step <= 0:
            return 0.0
        cost = step_cost(self.model_config(), r.batch_size or 64)
        return r.seconds_per_step * (cost / r.measured_cost if r.measured_cost > 0 else 1.0)

    def estimate(self) -> tuple[float | None, str]:
        """(seconds, how it was estimated) for the whole run; (None, reason) when there is nothing to go on."""
        sps, basis = self.seconds_per_step(), "measured speed"
        if sps <= 0:
            sps, basis = self._history_seconds_per_step(), "the shipped model's training history (rough)"
        if sps <= 0:
            return None, "unknown: measure the speed"
        total = STARTUP_S + (self.effective_steps() * sps if self.trains else 0.0)
        if self.recipe.reparam_depth:
            total += self.recipe.distill_steps * sps * 1.5  # teacher forward + student
        if self.recipe.quant:
            total += 10.0
        return total, basis

    def _history_seconds_per_step(self) -> float:
        """s/step of the task's shipped model (card provenance), scaled by step_cost; 0 if unknown."""
        base = self.base_params()
        folder = Path(self._task().recipe).parent if self._task().recipe else None
        if folder is None:
            return 0.0
        folder = folder if folder.is_absolute() else paths.install_root() / folder
        try:
            card = tomllib.loads((folder / "card.toml").read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return 0.0
        prov = card.get("provenance", {})
        secs, steps = float(prov.get("training_seconds", 0) or 0), int(prov.get("steps", 0) or 0)
        if secs <= 0 or steps <= 0:
            return 0.0
        arch = str(base.get("model", "vit-micro"))
        hist_cfg = {**ARCHITECTURES.get(arch, ARCHITECTURES["vit-micro"]), **dict(base.get("model_overrides", {}))}
        hist = step_cost(hist_cfg, int(prov.get("batch_size", base.get("batch_size", 64))))
        return secs / steps * step_cost(self.model_config(), self.recipe.batch_size or 64) / hist

    # validation --------------------------------------------------------------------------------------------
    def problems(self) -> list[str]:
        """Everything that would stop the run, one line each (empty: ready)."""
        out: list[str] = []
        if self.task is None:
            return ["choose a task"]
        if self.page_job:
            out = self.clip.problems()
            if not self.model_id or not all(c.islower() or c.isdigit() or c in "-_." for c in self.model_id):
                out.append("the model id may hold lower-case letters, digits, '-', '_' and '.'")
            return out + ([] if self.out_dir else ["choose an output folder"])
        if self.data.source not in SOURCES:
            out.append(f"data source must be one of {SOURCES}")
        if self.data.source != "simulate" and not self.data.path:
            out.append("choose the data folder or HDF5 file")
        if self.start.kind == "zoo" and not self.start.model_id:
            out.append("choose a model from the zoo")
        if self.task.job and (self.start.kind != "zoo" or self.recipe.mode != "finetune" or self.compresses):
            out.append(f"{self.task.title}: fine-tunes a zoo model that ships a checkpoint (no training from "
                       "scratch, no compression)")
        if self.recipe.mode == "finetune" and (self.start.kind != "zoo" or not self.start.has_checkpoint):
            out.append("fine-tuning needs a zoo model that ships checkpoint.pt")
        if self.recipe.mode == "none" and not (self.start.kind == "zoo" and self.compresses):
            out.append("without training, choose a zoo model and a compression step")
        if self.compresses and self.start.kind == "zoo" and self.recipe.mode == "none" \
                and not self.start.has_checkpoint:
            out.append(f"{self.start.model_id}: compression needs its checkpoint.pt (this model ships ONNX only)")
        if self.recipe.distill and not self.recipe.reparam_depth:
            out.append("distillation trains a smaller student: choose a student depth")
        if self.recipe.distill not in DISTILL:
            out.append(f"distillation must be one of {DISTILL[1:]}")
        if self.recipe.quant not in QUANT:
            out.append(f"quantization must be one of {QUANT[1:]}")
        if self.recipe.reparam_depth:
            depth = int(self.model_config().get("depth", 0))
            if depth % self.recipe.reparam_depth or self.recipe.reparam_depth >= depth:
                out.append(f"student depth {self.recipe.reparam_depth} must divide the model depth {depth} "
                           "and be smaller")
        allowed = problem(self.task.problem).distill
        if allowed is not None and self.recipe.distill not in allowed:
            out.append(f"a {self.task.problem} model distils its prediction and features (choose "
                       f"{' or '.join(m for m in allowed if m)})")
        cfg = self.model_config()
        if int(cfg["img_size"]) % int(cfg["patch"]):
            out.append(f"image size {cfg['img_size']} is not a multiple of the patch {cfg['patch']}")
        if int(cfg["width"]) % int(cfg["heads"]):
            out.append(f"width {cfg['width']} is not divisible by heads {cfg['heads']}")
        if self.trains and (self.recipe.steps <= 0 or self.recipe.batch_size <= 0 or self.recipe.lr <= 0):
            out.append("steps, batch size and learning rate must be positive")
        if not self.model_id or not all(c.isalnum() or c in "-_." for c in self.model_id):
            out.append("the model id may hold letters, digits, '-', '_' and '.'")
        if not self.out_dir:
            out.append("choose an output folder")
        return out

    # serialisation -----------------------------------------------------------------------------------------
    def _task(self) -> TrainTask:
        if self.task is None:
            raise BadInput("no task chosen")
        return self.task

    def export_table(self) -> dict[str, Any]:
        """Card fields for the exported model (the parent recipe's, with this model's id and input size)."""
        t = self._task()
        base = self.base_export()
        ex: dict[str, Any] = {k: v for k, v in base.items() if k not in ("out_dir", "provenance", "id")}
        ex.update(id=self.model_id, task=t.id, version=self.version, license=self.license,
                  out_dir=str(Path(self.out_dir) / "model"), latency_runs=50)
        ex["description"] = self.description or f"{t.title}: trained with the Vitascope wizard " \
            f"({self.start.arch if self.start.kind == 'new' else 'from ' + self.start.model_id})."
        if isinstance(ex.get("preprocess"), dict) and "size" in ex["preprocess"]:
            ex["preprocess"] = {**ex["preprocess"], "size": self.image_size()}
        held = dict(t.heldout or base.get("heldout", {}))
        if held and self.data.source == "simulate":
            hp = dict(held.get("params", {}))
            if t.image_size_param and self.data.image_size:
                hp[t.image_size_param] = int(self.data.image_size)
            ex["heldout"] = {**held, "params": hp}
        else:
            ex.pop("heldout", None)
        start = self.start.model_id if self.start.kind == "zoo" else f"new {self.start.arch}"
        ex["provenance"] = {"wizard": True, "start": start}
        ex["recipe"] = RECIPE_FILE  # written next to the model by the wizard (and by `vitascope train`)
        return ex

    def train_params(self) -> dict[str, Any]:
        """TrainSpec parameters (the loop's), starting from the task's shipped recipe."""
        base = self.base_params()
        keep = ("min_lr", "schedule", "weight_decay", "betas", "grad_clip", "augment", "loss")
        p: dict[str, Any] = {k: base[k] for k in keep if k in base}
        steps = self.effective_steps()
        p.update(model=self.start.arch, model_overrides={k: v for k, v in self.model_config().items()
                                                         if k not in ("head",)},
                 task=self._task().problem, data=self.data_table(), steps=steps,
                 batch_size=int(self.recipe.batch_size), lr=float(self.recipe.lr),
                 warmup_steps=min(int(base.get("warmup_steps", 0)), steps // 10),
                 eval_every=max(1, steps // 8), checkpoint_every=max(1, steps // 4),
                 log_every=max(1, min(50, steps // 100)), threads=int(self.recipe.threads), export=self.export_table())
        losses = problem(p["task"]).losses
        if losses is not None and p.get("loss") not in (None, *losses):
            p.pop("loss")
        return p

    def to_job(self) -> JobSpec:
        """The JobSpec the worker runs: kind "train" for plain training, the wizard job otherwise."""
        t = self._task()
        name = self.model_id
        if self.page_job:
            return JobSpec(self.page_job, self.clip.job_params(self.model_id), out_dir=self.out_dir, name=name,
                           seed=self.seed)
        if t.job:
            return JobSpec(t.job, self.custom_job_params(), out_dir=self.out_dir, name=name, seed=self.seed,
                           resume=self.resume)
        if self.start.kind == "new" and self.recipe.mode == "train" and not self.compresses:
            return JobSpec("train", self.train_params(), out_dir=self.out_dir, name=name, seed=self.seed,
                           resume=self.resume)
        r = self.recipe
        params: dict[str, Any] = {"task": t.id, "model_id": self.model_id}
        if self.trains:
            params["train"] = self.train_params()
        if self.start.kind == "zoo":
            params["parent"] = self.start.model_dir
        if r.mode == "finetune":
            params["init"] = "parent"
        if self.compresses:
            params["compress"] = {"reparam_depth": int(r.reparam_depth), "distill": r.distill,
                                  "quant": r.quant, "steps": int(r.distill_steps), "threads": int(r.threads)}
        return JobSpec(WIZARD_JOB, params, out_dir=self.out_dir, name=name, seed=self.seed, resume=self.resume)

    def custom_job_params(self) -> dict[str, Any]:
        """The params of a task's own fine-tuning job (TrainTask.job): the parent zoo model, the data table (its
        validation side is the held-out part), the recipe's numbers and the card fields of the result."""
        r = self.recipe
        steps = self.effective_steps()
        return {"task": self._task().id, "model_id": self.model_id, "parent": self.start.model_dir,
                "data": self.data_table(), "steps": steps, "batch_size": int(r.batch_size), "lr": float(r.lr),
                "threads": int(r.threads), "log_every": max(1, min(50, steps // 100)), "export": self.export_table()}

    def to_recipe_toml(self) -> str:
        """The same run as a recipe: `vitascope train RECIPE.toml` (add --nproc N for several processes)."""
        import tomli_w

        job = self.to_job()
        head = (f"# Written by the Vitascope training wizard for {self._task().title}.\n"
                f"# Run headless: vitascope train THIS.toml   (several processes: --nproc N)\n")
        data = {"kind": job.kind, "name": job.name, "seed": job.seed, "out_dir": job.out_dir,
                "params": _drop_none(job.params)}
        return head + tomli_w.dumps(data)

    def save_recipe(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_recipe_toml(), encoding="utf-8")
        return p

    def to_dict(self) -> dict[str, Any]:
        d = asdict(replace(self, task=None))
        d["task"] = self.task.id if self.task else ""
        return d

    def resumed(self) -> WizardSpec:
        """A copy that continues from the last checkpoint in out_dir."""
        return replace(self, resume=True)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def default_out_dir(model_id: str) -> str:
    return str(paths.jobs_dir() / f"wizard-{model_id}")


def fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "–"
    s = int(round(s))
    return f"{s // 3600} h {s // 60 % 60:02d} min" if s >= 3600 else (f"{s // 60} min {s % 60:02d} s" if s >= 60
                                                                          else f"{s} s")
