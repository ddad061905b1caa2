"""The model zoo: `models/<id>/card.toml` folders and the files their cards list, checked (size, sha256, I/O)
before use; atomic install into the user's zoo."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import manifest, paths, runtime
from .card import (
    CARD_FILE,
    CLIP_CARD_FILE,
    GOLDEN_FILE,
    MODEL_FILE,
    Artifact,
    ModelCard,
    TensorSpec,
    card_path,
    is_old_format,
    read_card,
    read_card_dict,
    sha256_file,
    write_card,
)
from .errors import BadInput, ModelError
from .validate import finite_float32

log = logging.getLogger(__name__)


@dataclass
class ZooEntry:
    """A model folder found on disk; `card` is None and `error` set when the card could not be read."""

    folder: Path
    card: ModelCard | None
    error: str | None = None
    builtin: bool = False

    @property
    def id(self) -> str:
        return self.card.id if self.card else self.folder.name


@dataclass
class ModelHandle:
    """A verified model with its onnxruntime session (None for a card without a `model` artifact, whose plug-in
    opens the roles it needs with `session_of` / `path`); `left_out` names optional artifacts that failed their
    check (role → reason) and are not to be used."""

    card: ModelCard
    folder: Path
    session: object | None
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)

    def path(self, role: str) -> Path | None:
        """The checked file of an artifact, None when the card lists none for `role` or it was left out."""
        art = self.card.artifact(role)
        if art is None or role in self.left_out:
            return None
        return self.folder / art.file

    def session_of(self, role: str, threads: int | None = None):
        """An onnxruntime session of the checked .onnx artifact `role`; ModelError when the card has none."""
        p = self.path(role)
        if p is None or not p.name.endswith(".onnx"):
            raise ModelError(f"{self.card.id}: no ONNX artifact with role {role!r}")
        return runtime.create_session(p, threads=threads, warmup=False)

    def run(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run on positional inputs (card order); checks shapes and finiteness first."""
        if self.session is None:
            raise ModelError(f"{self.card.id}: has no 'model' artifact to run (its roles: "
                             f"{', '.join(a.role for a in self.card.artifacts)})")
        if len(arrays) != len(self.card.inputs):
            raise ModelError(f"{self.card.id}: expects {len(self.card.inputs)} input(s), got {len(arrays)}")
        feeds = {}
        for spec, arr in zip(self.card.inputs, arrays, strict=True):
            raw = np.asarray(arr)
            if np.dtype(spec.dtype).kind == "f" and raw.dtype.kind in "fc":  # 1e300 would become inf in float32
                try:
                    raw = finite_float32(raw, f"{self.card.id}: input {spec.name!r}")
                except BadInput as e:
                    raise ModelError(str(e)) from None
            a = np.asarray(raw, dtype=np.dtype(spec.dtype))
            check_shape(self.card.id, spec, a.shape)
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ModelError(f"{self.card.id}: input {spec.name!r} holds NaN or infinite values")
            feeds[spec.name] = a
        try:
            return list(self.session.run(self.output_names, feeds))
        except Exception as e:  # onnxruntime's own exception types: a model that cannot run this input
            first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
            raise ModelError(f"{self.card.id}: onnxruntime failed to run ({first[:200]})") from None


def check_shape(model_id: str, spec: TensorSpec, shape: tuple[int, ...]) -> None:
    if len(shape) != len(spec.shape):
        raise ModelError(f"{model_id}: input {spec.name!r} must have {len(spec.shape)} dims "
                         f"{list(spec.shape)}, got {list(shape)}")
    for want, got in zip(spec.shape, shape, strict=True):
        if isinstance(want, int) and want != got:
            raise ModelError(f"{model_id}: input {spec.name!r} must be {list(spec.shape)}, got {list(shape)}")


def check_artifact(folder: Path, art: Artifact) -> None:
    """One file of a model folder against its card entry: present, a regular file, the card's size, then its
    sha256; ModelError naming the file and its role otherwise."""
    path = folder / art.file
    what = f"{path} ({art.role})"
    if path.is_symlink() or not path.is_file():
        raise ModelError(f"{what}: missing" if not path.exists() else f"{what}: not a regular file")
    if art.file.endswith(".onnx") and (folder / (art.file + ".data")).exists():
        raise ModelError(f"{folder}: has a {art.file}.data sidecar; ONNX files must hold their weights")
    size = path.stat().st_size
    if art.bytes is not None and size != art.bytes:
        raise ModelError(f"{what}: {size} bytes but the card says {art.bytes} (truncated or replaced)")
    digest = sha256_file(path)
    if digest != art.sha256:
        raise ModelError(f"{what}: sha256 {digest[:12]}… does not match the card's {art.sha256[:12]}… "
                         "(file corrupted or tampered with)")


def verify_artifacts(folder: Path, card: ModelCard, strict: bool = True) -> dict[str, str]:
    """Check every artifact the card lists before anything is loaded. A failing required artifact raises
    ModelError; a failing optional one raises too when `strict`, else it is returned as {role: reason}."""
    left_out: dict[str, str] = {}
    for art in card.artifacts:
        try:
            check_artifact(folder, art)
        except ModelError as e:
            if strict or not art.optional:
                raise
            left_out[art.role] = str(e)
    return left_out


def require_roles(card: ModelCard, roles: Iterable[str], left_out: dict[str, str] | None = None) -> None:
    """ModelError unless the card lists (and the check kept) an artifact for every role in `roles`."""
    for role in roles:
        if card.artifact(role) is None:
            raise ModelError(f"{card.id}: a {card.task!r} card without a {role!r} artifact")
        if left_out and role in left_out:
            raise ModelError(left_out[role])


def verify_file(folder: Path, card: ModelCard) -> None:
    """Every artifact of the card, optional ones included (the check `models verify` and installs make)."""
    verify_artifacts(folder, card, strict=True)


def check_io(card: ModelCard, session) -> None:
    """The session's inputs/outputs must be the card's, by name, rank and fixed dims."""
    for kind, specs, metas in (("input", card.inputs, session.get_inputs()),
                               ("output", card.outputs, session.get_outputs())):
        by_name = {m.name: m for m in metas}
        if sorted(by_name) != sorted(s.name for s in specs):
            raise ModelError(f"{card.id}: model {kind}s {sorted(by_name)} differ from the card's "
                             f"{sorted(s.name for s in specs)}")
        for s in specs:
            got = by_name[s.name].shape
            if len(got) != len(s.shape):
                raise ModelError(f"{card.id}: {kind} {s.name!r} has rank {len(got)}, card says {len(s.shape)}")
            for want, dim in zip(s.shape, got, strict=True):
                if isinstance(want, int) and isinstance(dim, int) and want != dim:
                    raise ModelError(f"{card.id}: {kind} {s.name!r} is {got}, card says {list(s.shape)}")
                if isinstance(want, int) and not isinstance(dim, int):
                    raise ModelError(f"{card.id}: {kind} {s.name!r} has a free dim where the card fixes {want}")


class Zoo:
    """Model folders under several roots; later roots (the user's) override earlier ones (shipped) by id. By default
    the roots are the app's shared models/, each installed plug-in's model folders (its manifest), then the user's."""

    def __init__(self, roots: Iterable[Path] | None = None, install_root: Path | None = None) -> None:
        if roots is None:
            roots = [*manifest.model_roots(), paths.user_models_dir()]
        self.roots = [Path(r) for r in roots]
        self.install_root = Path(install_root) if install_root else self.roots[-1]
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    # discovery ---------------------------------------------------------------------------------------------
    def entries(self) -> list[ZooEntry]:
        found: dict[str, ZooEntry] = {}
        for root in self.roots:
            shipped = root != self.install_root  # every root but the one models are installed into
            if not root.is_dir():
                continue
            for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if card_path(folder) is None and not (folder / MODEL_FILE).exists():
                    continue
                try:
                    card = read_card(folder)
                    entry = ZooEntry(folder, card, builtin=shipped)
                except ModelError as e:
                    entry = ZooEntry(folder, None, str(e), builtin=shipped)
                found[entry.id] = entry
        return sorted(found.values(), key=lambda e: e.id)

    def cards(self, task: str | None = None) -> list[ModelCard]:
        return [e.card for e in self.entries() if e.card and (task is None or e.card.task == task)]

    def entry(self, model_id: str) -> ZooEntry:
        for e in self.entries():
            if e.id == model_id:
                return e
        raise ModelError(f"model {model_id!r} is not installed (see `vitascope models list`)")

    # verification and loading ------------------------------------------------------------------------------
    def verify(self, model_id: str) -> ModelCard:
        e = self.entry(model_id)
        if e.card is None:
            raise ModelError(e.error or f"{e.folder}: unreadable card")
        verify_file(e.folder, e.card)
        return e.card

    def resolve(self, id_or_dir: str | Path | None, task: str | None = None) -> Path:
        """The model folder `id_or_dir` names: a folder given by path, else an installed model id; None → the
        first installed model (of `task` when given). With `task`, a model of another task is refused. Raises
        BadInput for an empty name, ModelError for a name that is neither."""
        if id_or_dir is not None and not str(id_or_dir).strip():
            raise BadInput("model: empty; give an installed model id or a model folder")
        what = f"{task} model" if task else "model"
        if id_or_dir is None:
            entries = [e for e in self.entries() if e.card and (task is None or e.card.task == task)]
            if not entries:
                raise ModelError(f"no {what} is installed (see `vitascope models list`)")
            return entries[0].folder
        p = Path(id_or_dir).expanduser()
        if p.is_dir():
            folder = p
        else:
            e = next((e for e in self.entries() if e.id == str(id_or_dir)), None)
            if e is None:
                raise ModelError(f"model {str(id_or_dir)!r} is not installed (see `vitascope models list`) "
                                 "and is not a folder")
            folder = e.folder
        if task is not None:
            card = read_card(folder)
            if card.task != task:
                raise ModelError(f"{id_or_dir}: a {card.task!r} model, not a {task!r} model")
        return folder

    def open(self, model_id_or_dir: str | Path, threads: int | None = None,
             roles: Iterable[str] = ()) -> ModelHandle:
        """Verify checksum and size of every artifact, create the session, check I/O against the card; `roles`
        the caller needs must be listed (and pass their check)."""
        p = Path(model_id_or_dir)
        if p.is_dir():
            return open_folder(p, threads, roles)
        return open_folder(self.entry(str(model_id_or_dir)).folder, threads, roles)

    # installation ------------------------------------------------------------------------------------------
    def install(self, src: str | Path, replace: bool = False) -> ModelCard:
        """Copy a verified model folder into the install root atomically (temp dir + rename)."""
        src = Path(src)
        if not src.is_dir():
            raise ModelError(f"{src}: not a model folder")
        files = install_files(src)  # before anything in it is read
        card = read_card(src)
        verify_file(src, card)
        check_loads(src, card)
        with self._lock:
            self.install_root.mkdir(parents=True, exist_ok=True)
            dest = self.install_root / card.id
            if dest.exists() and not replace:
                raise ModelError(f"{dest}: a model with id {card.id!r} is already installed")
            tmp = Path(tempfile.mkdtemp(prefix=f".{card.id}.", dir=self.install_root))
            try:
                for f in files:
                    copy_regular(f, tmp / f.name)
                if (tmp / CLIP_CARD_FILE).exists() or is_old_format(read_card_dict(tmp / CARD_FILE)):
                    write_card(tmp, card)  # the installed copy holds the upgraded card
                    (tmp / CLIP_CARD_FILE).unlink(missing_ok=True)
                verify_file(tmp, card)  # catch a short write (full disk) before it becomes visible
                if dest.exists():
                    old = self.install_root / f".{card.id}.old"
                    shutil.rmtree(old, ignore_errors=True)
                    os.replace(dest, old)
                    os.replace(tmp, dest)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    os.replace(tmp, dest)
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ModelError(f"{dest}: install failed ({e.strerror or e}); nothing was changed") from None
            except ModelError:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        self._notify()
        return card

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _notify(self) -> None:
        for cb in list(self._listeners):
            try:
                cb()
            except Exception:
                log.exception("zoo listener failed")


def install_files(src: Path) -> list[Path]:
    """The files `models install` copies from `src`: every entry must be a regular file with one link, inside the
    folder (no symlinks, hard links, devices or FIFOs); sub-folders are left out. ModelError otherwise."""
    root = src.resolve()
    files = []
    try:
        entries = sorted(src.iterdir())
    except OSError as e:
        raise ModelError(f"{src}: cannot list ({e.strerror or e})") from None
    for f in entries:
        st = f.lstat()
        if stat.S_ISLNK(st.st_mode):
            raise ModelError(f"{f}: is a symbolic link; a model folder must hold its files themselves")
        if stat.S_ISDIR(st.st_mode):
            continue  # sub-folders are not part of a model and are not copied
        if not stat.S_ISREG(st.st_mode):
            raise ModelError(f"{f}: not a regular file")
        if st.st_nlink > 1:
            raise ModelError(f"{f}: has {st.st_nlink} hard links; copy the file instead of linking it")
        if f.resolve().parent != root:
            raise ModelError(f"{f}: leaves the model folder")
        files.append(f)
    if not files:
        raise ModelError(f"{src}: empty; a model folder holds card.toml and model.onnx")
    return files


def copy_regular(src: Path, dest: Path) -> None:
    """Copy a regular file without following a link that appeared since it was checked (O_NOFOLLOW)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(src, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_nlink > 1:
            raise ModelError(f"{src}: changed while installing (no longer a regular file)")
        with os.fdopen(fd, "rb", closefd=False) as fin, open(dest, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    finally:
        os.close(fd)
    shutil.copystat(src, dest, follow_symlinks=False)


def check_loads(folder: Path, card: ModelCard) -> None:
    """onnxruntime must load the card's model (its I/O the card's) and every other required .onnx artifact."""
    if card.has_model:
        check_io(card, runtime.create_session(folder / card.model_file, warmup=False))
    for art in card.sidecars:
        if art.file.endswith(".onnx") and not art.optional:
            runtime.create_session(folder / art.file, warmup=False)


def open_folder(folder: Path, threads: int | None = None, roles: Iterable[str] = ()) -> ModelHandle:
    """Read the card, check every artifact (size, sha256) and the `roles` the caller needs, then create the
    model's session and check its I/O (a card without a `model` artifact gets no session)."""
    folder = Path(folder)
    card = read_card(folder)
    left_out = verify_artifacts(folder, card, strict=False)
    require_roles(card, roles, left_out)
    if not card.has_model:
        return ModelHandle(card, folder, None, left_out=left_out)
    sess = runtime.create_session(folder / card.model_file, threads=threads, warmup=False)
    check_io(card, sess)
    handle = ModelHandle(card, folder, sess, [s.name for s in card.inputs], [s.name for s in card.outputs],
                         left_out)
    handle.run(*example_inputs(card))  # warm-up with shapes the card allows
    return handle


def example_inputs(card: ModelCard, batch: int = 1) -> list[np.ndarray]:
    """Zeros shaped by the card: free dim 0 → batch, the other free dims → preprocess.size: one number (square)
    or [height, width] for the last two (default 64)."""
    size = card.preprocess.get("size", 64)
    hw = [int(v) for v in size] if isinstance(size, (list, tuple)) else [int(size)] * 2
    out = []
    for spec in card.inputs:
        n = len(spec.shape)
        shape = [d if isinstance(d, int) else (batch if i == 0 else hw[max(0, i - (n - 2))] if i >= n - 2
                                               else hw[0]) for i, d in enumerate(spec.shape)]
        out.append(np.zeros(shape, dtype=np.dtype(spec.dtype)))
    return out


def golden_check(handle: ModelHandle, atol: float = 1e-4, rtol: float = 1e-3) -> float:
    """Run the model on `golden.npz` (input_*/output_* arrays); return max abs diff or raise ModelError."""
    path = handle.folder / GOLDEN_FILE
    if not path.is_file():
        raise ModelError(f"{path}: missing golden input")
    try:
        with np.load(path) as z:
            ins = [z[f"input_{i}"] for i in range(len(handle.card.inputs))]
            outs = [z[f"output_{i}"] for i in range(len(handle.card.outputs))]
    except (OSError, KeyError, ValueError) as e:
        raise ModelError(f"{path}: unreadable golden file ({e})") from None
    got = handle.run(*ins)
    worst = 0.0
    for i, (g, w) in enumerate(zip(got, outs, strict=True)):
        if g.shape != w.shape:
            raise ModelError(f"{handle.card.id}: golden output {i} shape {g.shape} != {w.shape}")
        diff = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))) if g.size else 0.0
        if not np.allclose(g, w, atol=atol, rtol=rtol):
            raise ModelError(f"{handle.card.id}: golden output {i} differs by {diff:.3g} (model or runtime broken)")
        worst = max(worst, diff)
    return worst
