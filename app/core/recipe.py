"""Recipes: a JobSpec written as TOML (kind, seed, name, out_dir, [params]) read into a JobSpec with absolute paths.
Torch-free, so the CLI can check a recipe before any training code is imported."""

from __future__ import annotations

from pathlib import Path

from . import paths
from .card import RECIPE_FILE
from .errors import BadInput, JobError
from .jobs import JobSpec
from .validate import check_output_dir, load_toml, read_text_file


def _resolve(base: Path, value: str) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _resolve_init(params: dict, base: Path) -> dict:
    """params.init: "jobs:NAME/ckpt_last.pt" (a checkpoint of another recipe's default run) or a path relative to
    the recipe's folder → an absolute path."""
    init = params.get("init")
    if not isinstance(init, str) or not init:
        return params
    where = paths.jobs_dir() / init[len("jobs:"):] if init.startswith("jobs:") else _resolve(base, init)
    return {**params, "init": str(where)}


def load_recipe(path: str | Path, out: str | None = None, resume: bool = False) -> JobSpec:
    """Read a recipe TOML into a JobSpec with absolute paths; BadInput/JobError name the file. Relative paths
    (out_dir, params.init, params.export.out_dir) are resolved against the recipe's folder; without out_dir the
    run goes to `<user data>/jobs/<name>`."""
    path = Path(path)
    text = read_text_file(path, "recipe", "cannot read", strerror=True)
    data = load_toml(text, str(path))
    try:
        spec = JobSpec.from_dict(data)
    except (JobError, TypeError) as e:
        raise BadInput(f"{path}: {e}") from None
    export = spec.params.get("export")
    if isinstance(export, dict) and not isinstance(export.get("out_dir", ""), str):
        raise BadInput(f"{path}: params.export.out_dir must be a string")
    base = path.resolve().parent
    spec.name = spec.name or (base.name if path.name == RECIPE_FILE else path.stem)
    if out is not None:
        check_output_dir(out)
        spec.out_dir = str(Path(out).expanduser().resolve())
    elif spec.out_dir:
        spec.out_dir = _resolve(base, spec.out_dir)
    else:
        spec.out_dir = str(paths.jobs_dir() / spec.name)
    spec.resume = spec.resume or resume
    spec.params = _resolve_init(spec.params, base)
    if isinstance(spec.params.get("train"), dict):  # a wizard job: train (then compress)
        spec.params = {**spec.params, "train": _resolve_init(spec.params["train"], base)}
    export = spec.params.get("export")
    if isinstance(export, dict):
        export = dict(export)
        if export.get("out_dir"):
            export["out_dir"] = _resolve(base, export["out_dir"])
        export.setdefault("recipe_file", str(path.resolve()))
        spec.params = {**spec.params, "export": export}
    return spec
