"""A CLIP model folder at run time: both ONNX encoders in onnxruntime plus the tokenizer, checked against the card;
and where installed CLIP models are found (built-in and user model folders holding clip_card.toml)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.core import manifest, paths
from app.core.errors import BadInput, ModelError
from app.core.runtime import create_session

from .clipcard import CARD, read_card, verify
from .preprocess import preprocess
from .tokenizer import ClipTokenizer


def model_folders() -> list[Path]:
    """Installed CLIP model folders: shipped ones (the shared models/ and plug-ins' model folders) first, then the
    user's (a user folder with the same id wins)."""
    found: dict[str, Path] = {}
    for root in (*manifest.model_roots(), paths.user_models_dir()):
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / CARD).is_file()):
            try:
                found[read_card(folder).id] = folder
            except ModelError:
                continue
    return list(found.values())


def resolve_model(spec: str | Path | None) -> Path:
    """A model folder from a path or an installed id; None means the first installed CLIP model."""
    if spec is not None and Path(spec).is_dir():
        return Path(spec)
    folders = model_folders()
    if spec is None:
        if not folders:
            raise BadInput("no CLIP model installed; convert a checkpoint with `vitascope clip convert` and pass "
                           "--model FOLDER")
        return folders[0]
    for f in folders:
        if read_card(f).id == spec:
            return f
    raise BadInput(f"{spec}: no such CLIP model (not a folder, not an installed id)")


class ClipModel:
    """encode_images / encode_texts → L2-normalised float32 [N, E]."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        self.folder = Path(folder)
        self.card = read_card(self.folder)
        verify(self.folder, self.card)
        files = self.card.files
        self.image_sess = create_session(self.folder / files["image_encoder"]["file"], threads=threads)
        self.text_sess = create_session(self.folder / files["text_encoder"]["file"], threads=threads)
        self.tokenizer = ClipTokenizer(self.folder / files["tokenizer"]["file"],
                                       expect_sha256=files["tokenizer"]["sha256"])
        self.image_input = self.image_sess.get_inputs()[0].name
        self.text_input = self.text_sess.get_inputs()[0].name
        self.id = self.card.id
        self.size = self.card.image_size
        self.dim = self.card.embed_dim
        self.tag = f"{self.id}:{files['image_encoder']['sha256'][:12]}"

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (3, self.size, self.size):
            raise BadInput(f"{self.id}: images must be [N, 3, {self.size}, {self.size}], got {list(x.shape)}")
        return _unit(self.image_sess.run(None, {self.image_input: x})[0])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.tokenizer(list(texts), self.card.context_length)
        return _unit(self.text_sess.run(None, {self.text_input: ids})[0])

    def encode_files(self, files: Sequence[str | Path], batch: int = 16,
                     on_error: Callable[[str, str], None] | None = None,
                     progress: Callable[[int, int], None] | None = None) -> tuple[list[int], np.ndarray]:
        """(indices of the files that could be read, their embeddings); unreadable ones go to on_error."""
        keep: list[int] = []
        out: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        pending_idx: list[int] = []
        for i, f in enumerate(files):
            try:
                pending.append(preprocess(f, self.size)[0])
                pending_idx.append(i)
            except BadInput as e:
                if on_error is None:
                    raise
                on_error(str(f), str(e))
            if len(pending) == batch or (i == len(files) - 1 and pending):
                out.append(self.encode_images(np.stack(pending)))
                keep += pending_idx
                pending, pending_idx = [], []
                if progress is not None:
                    progress(i + 1, len(files))
        emb = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return keep, emb


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


