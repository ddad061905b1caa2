"""Property tests (Hypothesis) for the parsers at the app's boundaries: whatever the input, each returns a value
or raises its one-line error type, never anything else; numbers in any notation reach every option."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import _Parser
from app.core.card import parse_card
from app.core.errors import BadInput, JobError, ModelError
from app.core.jobs import JobSpec
from app.core.validate import MAX_DEPTH, finite_float32, load_json, load_toml, nesting_depth
from tests.helpers import field_paths, replaced

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=4), max_leaves=20)


def _one_line(e: Exception) -> bool:
    return bool(str(e)) and "\n" not in str(e)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["{!r}", "{:e}", "{:g}", "{:.3E}"]))
def test_every_number_notation_parses_as_an_option_value(x, fmt):
    parser = _Parser(prog="vitascope t")
    parser.add_argument("--z", type=float)
    parser.add_argument("--range", type=float, nargs=2)
    text = fmt.format(x)
    args = parser.parse_args(["--z", text, "--range", text, text])
    assert args.z == float(text) and args.range == [float(text)] * 2


def test_subparsers_of_plugins_inherit_the_parser():
    from app.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["holo", "reconstruct", "x.h5", "--z", "-1.5e-5", "--out", "o.h5",
                              "--z-range", "-4.6e-5", "4.6e-5"])
    assert args.z == "-1.5e-5" and args.z_range == [-4.6e-5, 4.6e-5]


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_load_json_returns_or_refuses_in_one_line(text):
    try:
        load_json(text, "spec.json")
    except BadInput as e:
        assert _one_line(e)


@SETTINGS
@given(st.integers(0, 5000))
def test_nesting_is_refused_past_the_limit_without_recursion(depth):
    text = '{"a": ' * depth + "1" + "}" * depth
    try:
        data = load_json(text, "x.json")
        assert nesting_depth(data) == depth <= MAX_DEPTH
    except BadInput as e:
        assert depth > MAX_DEPTH and _one_line(e)
    toml = ("[" + ".".join(["a"] * depth) + "]\nx = 1\n") if depth else "x = 1\n"
    try:
        load_toml(toml, "r.toml")
        assert depth + 1 <= MAX_DEPTH
    except BadInput as e:
        assert depth + 1 > MAX_DEPTH and _one_line(e)


@SETTINGS
@given(st.text(max_size=300))
def test_load_toml_returns_or_refuses_in_one_line(text):
    try:
        assert isinstance(load_toml(text, "r.toml"), dict)
    except BadInput as e:
        assert _one_line(e)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["kind", "params", "out_dir", "name", "seed", "resume", "other"]),
                       json_values, max_size=6))
def test_job_spec_from_any_json_object_is_typed_or_refused(d):
    try:
        spec = JobSpec.from_dict(d)
    except JobError as e:
        assert _one_line(e)
        return
    assert isinstance(spec.kind, str) and spec.kind and isinstance(spec.params, dict)
    assert isinstance(spec.seed, int) and not isinstance(spec.seed, bool) and isinstance(spec.resume, bool)


VALID_CARD = {
    "id": "m", "task": "t", "version": "1", "license": "MIT",
    "model": {"file": "model.onnx", "sha256": "0" * 64, "bytes": 10, "params": 1, "opset": 17},
    "inputs": [{"name": "x", "shape": ["batch", 3], "dtype": "float32"}],
    "outputs": [{"name": "y", "shape": ["batch", 2], "dtype": "float32"}],
    "labels": ["a", "b"], "preprocess": {"size": 64, "mean": 0.5, "std": [0.5, 0.5, 0.5]},
}


@SETTINGS
@given(st.sampled_from(list(field_paths(VALID_CARD, into_lists=False))), json_values)
def test_card_with_any_field_replaced_parses_typed_or_is_refused(path, value):
    try:
        c = parse_card(replaced(VALID_CARD, path, value), "card.toml")
    except ModelError as e:
        assert _one_line(e)
        return
    assert isinstance(c.bytes, int) and c.bytes > 0 and all(isinstance(x, str) for x in c.labels)
    assert isinstance(c.params, int) and isinstance(c.preprocess, dict)


@SETTINGS
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=16))
def test_finite_float32_never_lets_inf_through(values):
    a = np.asarray(values, np.float64)
    try:
        out = finite_float32(a, "frame")
    except BadInput as e:
        assert _one_line(e) and (not np.isfinite(a).all() or np.abs(a).max() > np.finfo(np.float32).max)
        return
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert all(math.isclose(float(o), v, rel_tol=1e-6, abs_tol=1e-37) for o, v in zip(out, values, strict=True))


@SETTINGS
@given(st.binary(max_size=300))
def test_image_header_check_reads_or_refuses_any_bytes(tmp_path_factory, data):
    from app.core.io.images import check_image_header

    p = tmp_path_factory.mktemp("img") / "x.png"
    p.write_bytes(data)
    try:
        w, h = check_image_header(p)
    except BadInput as e:
        assert _one_line(e)
        return
    assert w > 0 and h > 0


def test_image_header_refuses_a_bomb_before_decoding(tmp_path):
    from app.core.io.images import MAX_PIXELS, check_image_header, read_image
    from tests.fuzz.corpus import png

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png(20000, 20000))
    with pytest.raises(BadInput, match="megapixel"):
        check_image_header(bomb)
    with pytest.raises(BadInput, match="megapixel"):
        read_image(bomb)
    side = int(MAX_PIXELS ** 0.5) - 1
    ok = tmp_path / "ok.png"
    ok.write_bytes(png(side, side))
    assert check_image_header(ok) == (side, side)
