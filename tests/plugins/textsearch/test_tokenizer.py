"""The CLIP tokenizer against open_clip's SimpleTokenizer ids (golden file of 1,198 strings), and its vocabulary."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import BadInput
from plugins.textsearch.tokenizer import CONTEXT, EOT, SOT, VOCAB_SHA256, ClipTokenizer, default_vocab, load_tokenizer

GOLDEN = Path(__file__).parent / "data" / "tokenizer_golden.json"


@pytest.fixture(scope="module")
def tok() -> ClipTokenizer:
    return load_tokenizer()


def test_vocabulary_artifact_is_the_clip_file():
    raw = default_vocab().read_bytes()
    assert len(raw) == 1_356_917
    assert hashlib.sha256(raw).hexdigest() == VOCAB_SHA256
    assert len(gzip.decompress(raw).decode("utf-8").split("\n")) == 262_146  # 262,145 lines + final newline


def test_vocab_size_and_special_ids(tok):
    assert len(tok.encoder) == 49_408 and len(tok.ranks) == 48_894
    assert tok.encoder["<start_of_text>"] == SOT == 49406 and tok.encoder["<end_of_text>"] == EOT == 49407


def test_ids_identical_to_open_clip_on_golden_strings(tok):
    rows = json.loads(GOLDEN.read_text())["rows"]
    assert len(rows) >= 1000
    kinds = {"empty": 0, "truncated": 0, "non_ascii": 0}
    ids = tok([r["text"] for r in rows])
    assert ids.shape == (len(rows), CONTEXT) and ids.dtype == np.int64
    mismatched = []
    for r, row in zip(rows, ids, strict=True):
        want = np.zeros(CONTEXT, np.int64)
        want[:len(r["ids"])] = r["ids"]
        if not np.array_equal(row, want):
            mismatched.append(r["text"][:40])
        kinds["empty"] += not r["text"].strip()
        kinds["truncated"] += len(r["ids"]) == CONTEXT
        kinds["non_ascii"] += any(ord(c) > 127 for c in r["text"])
    assert not mismatched, f"{len(mismatched)} differ, e.g. {mismatched[:3]}"
    assert kinds["empty"] >= 2 and kinds["truncated"] >= 50 and kinds["non_ascii"] >= 300


def test_truncation_keeps_eot_and_padding_is_zero(tok):
    long = tok("dog " * 200)[0]
    assert long[0] == SOT and long[-1] == EOT and (long[1:-1] != 0).all() and (long[1:-1] != EOT).all()
    short = tok("a dog")[0]
    n = int(np.argmax(short == EOT))
    assert short[0] == SOT and n == 3 and (short[n + 1:] == 0).all()
    assert tok("")[0].tolist()[:3] == [SOT, EOT, 0]


def test_cleaning_and_decode(tok):
    assert tok.encode("A  Dog&amp;CAT") == tok.encode("a dog&cat")
    assert tok.decode(tok.encode("a photo of a dog.")).strip() == "a photo of a dog ."


def test_wrong_vocabulary_is_refused(tmp_path):
    bad = tmp_path / "vocab.txt.gz"
    bad.write_bytes(gzip.compress(b"#version\nh e\n"))
    with pytest.raises(BadInput, match="sha256"):
        ClipTokenizer(bad)
    with pytest.raises(BadInput, match="merge lines"):
        ClipTokenizer(bad, expect_sha256=None)
    with pytest.raises(BadInput, match="cannot read"):
        ClipTokenizer(tmp_path / "missing.gz")
