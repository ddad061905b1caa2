"""A CLIP model folder at run time, opened through the zoo (every artifact checked first): both ONNX encoders in
onnxruntime plus the tokenizer; and which installed models are CLIP models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from app.core.errors import BadInput, ModelError
from app.core.zoo import Zoo, open_folder

from .clipcard import ROLES, TASK, spec_of
from .preprocess import preprocess
from .tokenizer import ClipTokenizer


def model_folders(zoo: Zoo | None = None) -> list[Path]:
    """Folders of the installed CLIP models whose card reads (the zoo's order; a user model overrides a shipped
    one with the same id)."""
    zoo = zoo or Zoo()
    return [e.folder for e in zoo.entries() if e.card is not None and e.card.task == TASK]


def find_model(spec: str | Path | None, zoo: Zoo | None = None) -> Path:
    """The folder of a CLIP model: a folder path or an installed id; None → the first installed CLIP model."""
    zoo = zoo or Zoo()
    try:
        return zoo.resolve(spec, TASK)
    except ModelError as e:
        if spec is None:
            raise BadInput("no CLIP model installed; convert a checkpoint with `vitascope clip convert` and pass "
                           "--model FOLDER (or `vitascope models install` it)") from None
        raise BadInput(str(e)) from None


class ClipModel:
    """encode_images / encode_texts → L2-normalised float32 [N, E]."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        self.handle = open_folder(Path(folder), threads, roles=ROLES)  # every artifact's size and sha256 first
        self.folder = self.handle.folder
        self.card = self.handle.card
        self.spec = spec_of(self.card)
        self.image_sess = self.handle.session_of("image_encoder", threads)
        self.text_sess = self.handle.session_of("text_encoder", threads)
        vocab = self.card.artifact("tokenizer")
        self.tokenizer = ClipTokenizer(self.folder / vocab.file, expect_sha256=vocab.sha256)
        self.image_input = self.image_sess.get_inputs()[0].name
        self.text_input = self.text_sess.get_inputs()[0].name
        self.id = self.card.id
        self.size = self.spec.image_size
        self.dim = self.spec.embed_dim
        self.context_length = self.spec.context_length
        self.tag = f"{self.id}:{self.card.artifact('image_encoder').sha256[:12]}"

    def encode_images(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (3, self.size, self.size):
            raise BadInput(f"{self.id}: images must be [N, 3, {self.size}, {self.size}], got {list(x.shape)}")
        return _unit(self.image_sess.run(None, {self.image_input: x})[0])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.tokenizer(list(texts), self.context_length)
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


