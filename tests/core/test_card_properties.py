"""Property tests for the artifacts form of a card: whatever value replaces any field (artifacts included), the card
parses into typed fields or is refused with one line; a parsed card writes and reads back unchanged."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.card import parse_card, read_card, write_card
from app.core.errors import ModelError
from tests.helpers import field_paths, replaced

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                             HealthCheck.function_scoped_fixture])
VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                   max_size=3), max_leaves=12)
CARD = {
    "id": "m", "task": "t", "version": "1", "license": "MIT",
    "artifacts": [{"role": "model", "file": "model.onnx", "sha256": "0" * 64, "bytes": 10, "params": 1, "opset": 17},
                  {"role": "tokenizer", "file": "vocab.txt.gz", "sha256": "1" * 64, "bytes": 5},
                  {"role": "rollout", "file": "rollout.onnx", "sha256": "2" * 64, "bytes": 7, "optional": True}],
    "inputs": [{"name": "x", "shape": ["batch", 3], "dtype": "float32"}],
    "outputs": [{"name": "y", "shape": ["batch", 2], "dtype": "float32"}],
    "labels": ["a", "b"], "preprocess": {"size": 64},
    "holography": {"optics": {"mode": "offaxis"}},
}


@SETTINGS
@given(st.sampled_from(list(field_paths(CARD))), VALUES)
def test_any_field_replaced_parses_typed_or_is_refused_in_one_line(path, value):
    try:
        c = parse_card(replaced(CARD, path, value), "card.toml")
    except ModelError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(c.bytes, int) and c.bytes > 0 and c.sha256 == c.artifact("model").sha256
    roles = [a.role for a in c.artifacts]
    files = [a.file for a in c.artifacts]
    assert roles[0] == "model" and len(set(roles)) == len(roles) and len(set(files)) == len(files)
    for a in c.artifacts:
        assert "/" not in a.file and "\\" not in a.file and not a.file.startswith(".")
        assert a.bytes is None or (isinstance(a.bytes, int) and a.bytes > 0)
        assert isinstance(a.sha256, str) and len(a.sha256) == 64


def test_a_card_writes_and_reads_back_unchanged(tmp_path):
    card = parse_card(CARD, "card.toml")
    write_card(tmp_path, card)
    back = read_card(tmp_path)
    assert back.to_dict() == card.to_dict() and back.section("holography") == CARD["holography"]
    assert [(a.role, a.optional) for a in back.artifacts] == [("model", False), ("tokenizer", False),
                                                             ("rollout", True)]
