"""The CLIP byte-pair-encoding tokenizer: ftfy + HTML cleaning, lower-casing, the CLIP split pattern, 48,894 merges,
start/end-of-text tokens and a 77-token context padded with zeros (a too-long text keeps its end-of-text token)."""

from __future__ import annotations

import gzip
import hashlib
import html
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.core.errors import BadInput

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
VOCAB_SHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"
N_MERGES = 49152 - 256 - 2  # 48,894 merges after the header line
SOT, EOT = 49406, 49407
VOCAB_SIZE = 49408
CONTEXT = 77
_PATTERN = r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def default_vocab() -> Path:
    """The vocabulary file that ships with the plug-in (MIT, from OpenAI's CLIP)."""
    return Path(__file__).resolve().parent / "data" / VOCAB_FILE


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """Each byte as a printable character: printable Latin-1 bytes map to themselves, the rest to 256 + n."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + n) for n, b in enumerate(rest)}}


def clean(text: str) -> str:
    """ftfy repair, HTML unescaped twice, whitespace collapsed, lower-cased (the CLIP 'lower' cleaning)."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


class ClipTokenizer:
    """Text → int64 token ids [N, 77]; `encode` gives the ids of one text without SOT/EOT or padding."""

    def __init__(self, vocab_path: str | Path | None = None, expect_sha256: str | None = VOCAB_SHA256) -> None:
        import regex

        path = Path(vocab_path) if vocab_path is not None else default_vocab()
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise BadInput(f"{path}: cannot read the tokenizer vocabulary ({e.strerror})") from None
        if expect_sha256 and hashlib.sha256(raw).hexdigest() != expect_sha256:
            raise BadInput(f"{path}: sha256 {hashlib.sha256(raw).hexdigest()[:12]}… is not the CLIP vocabulary's "
                           f"{expect_sha256[:12]}…")
        try:
            lines = gzip.decompress(raw).decode("utf-8").split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise BadInput(f"{path}: not a gzipped BPE vocabulary ({e})") from None
        merges = [tuple(m.split()) for m in lines[1:N_MERGES + 1]]
        if len(merges) != N_MERGES or any(len(m) != 2 for m in merges):
            raise BadInput(f"{path}: expected {N_MERGES} merge lines of two symbols each")
        symbols = list(byte_to_unicode().values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
        vocab += ["<start_of_text>", "<end_of_text>"]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.decoder = {i: tok for tok, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_encoder = byte_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        self.cache: dict[str, list[str]] = {"<start_of_text>": ["<start_of_text>"],
                                              "<end_of_text>": ["<end_of_text>"]}

    def bpe(self, token: str) -> list[str]:
        """Merge the byte-symbols of one pre-token, lowest-ranked pair first, until no known pair is left."""
        hit = self.cache.get(token)
        if hit is not None:
            return hit
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            best, best_rank = None, None
            for pair in zip(word, word[1:], strict=False):
                r = self.ranks.get(pair)
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = pair, r
            if best is None:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        if len(self.cache) < 100_000:
            self.cache[token] = word
        return word

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in self.pattern.findall(clean(text)):
            symbols = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self.bpe(symbols))
        return ids

    def decode(self, ids: list[int] | np.ndarray) -> str:
        """Token ids back to text (SOT/EOT kept as their names, padding zeros must be stripped by the caller)."""
        text = "".join(self.decoder[int(i)] for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors="replace").replace("</w>", " ")

    def __call__(self, texts: str | list[str], context: int = CONTEXT) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), context), dtype=np.int64)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise BadInput(f"query {row}: text expected, got {type(text).__name__}")
            ids = [SOT, *self.encode(text), EOT]
            if len(ids) > context:
                ids = ids[:context]
                ids[-1] = EOT
            out[row, :len(ids)] = ids
        return out


@lru_cache(maxsize=4)
def load_tokenizer(vocab_path: str | None = None) -> ClipTokenizer:
    """A cached tokenizer for a vocabulary file (default: the shipped one)."""
    return ClipTokenizer(vocab_path)
