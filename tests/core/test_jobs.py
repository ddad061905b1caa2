"""JSON-lines job events round-trip; bad lines and specs give clear errors; cancel tokens cancel."""

from __future__ import annotations

import json
import math

import pytest

from app.core.errors import Cancelled, JobError
from app.core.jobs import CancelToken, JobSpec, ProgressEvent, decode_event, encode_event


def test_event_round_trip_one_line():
    ev = ProgressEvent("progress", step=3, total=10, values={"loss": 0.25, "bad": float("nan")}, path="/x")
    line = encode_event(ev)
    assert "\n" not in line
    back = decode_event(line)
    assert (back.event, back.step, back.total, back.path) == ("progress", 3, 10, "/x")
    assert back.values["loss"] == 0.25 and math.isnan(back.values["bad"])
    assert back.fraction == pytest.approx(0.3)
    assert json.loads(line)["values"]["bad"] is None


@pytest.mark.parametrize("line", ["not json", "[1, 2]", '{"step": 1}', '{"event": "exploded"}'])
def test_bad_event_lines(line):
    with pytest.raises(JobError):
        decode_event(line)


def test_terminal_events():
    assert ProgressEvent("finished").terminal and ProgressEvent("cancelled").terminal
    assert not ProgressEvent("checkpoint").terminal


def test_spec_round_trip_and_errors(tmp_path):
    spec = JobSpec("train", {"steps": 5}, out_dir=str(tmp_path), seed=3)
    p = spec.save(tmp_path / "job.json")
    assert JobSpec.load(p) == spec
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(JobError, match="not a readable JSON"):
        JobSpec.load(tmp_path / "bad.json")
    with pytest.raises(JobError, match="unknown field"):
        JobSpec.from_dict({"kind": "train", "epochz": 3})
    with pytest.raises(JobError, match="no such job spec"):
        JobSpec.load(tmp_path / "missing.json")


def test_cancel_token():
    tok = CancelToken()
    tok.check()
    assert not tok.wait(0.01)
    tok.cancel()
    assert tok.cancelled and tok.wait(0)
    with pytest.raises(Cancelled):
        tok.check()
