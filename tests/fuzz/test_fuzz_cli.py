"""The fuzz campaign: every generated bad input (tests/fuzz/corpus.py) through the real CLI must end as promised:
exit 2 with exactly one stderr line, no traceback, nothing written outside the named output. Cases whose fix
belongs to a plug-in's owners are xfailed (not strict) with the reason (tests/fuzz/known.py)."""

from __future__ import annotations

import pytest

from tests.fuzz.corpus import all_cases, leaf_commands
from tests.fuzz.known import KNOWN, owner_of
from tests.fuzz.runner import RESULTS, classify, run_case

ALL = all_cases(long=True)


def _param(case):
    marks = []
    if case.long:
        marks.append(pytest.mark.fuzz_long)
    if case.id in KNOWN:
        marks.append(pytest.mark.xfail(strict=False, reason=f"owned by {owner_of(case)} work: {KNOWN[case.id]}"))
    return pytest.param(case, id=case.id, marks=marks)


def test_campaign_is_big_and_covers_every_command():
    default = [c for c in ALL if not c.long]
    assert len(default) >= 400
    heads = {tuple(a for a in c.argv if not a.startswith(("{", "--home")))[:1] for c in default}
    for command in ("holo", "ecg", "demo", "models", "selftest", "train", "worker", "export", "compress", "logits"):
        assert (command,) in heads, command
    assert {c.kind for c in default} >= {"options", "readers", "sidecars", "cards", "specs", "recipes", "outputs",
                                         "security", "controls", "commands"}
    leaves = {path for path, _ in leaf_commands()}
    assert leaves <= {c.argv[:len(p)] for c in default for p in leaves}, "every command has a case"


def test_known_failures_belong_to_plugins():
    """Only plug-in-owned cases may be xfailed: the app and the demo plug-in keep every promise."""
    by_id = {c.id: c for c in ALL}
    assert set(KNOWN) <= set(by_id), sorted(set(KNOWN) - set(by_id))
    assert all(owner_of(by_id[i]) in ("holography", "ecg", "textsearch", "retrieval") for i in KNOWN)


@pytest.mark.parametrize("case", [_param(c) for c in ALL])
def test_case(case, fuzz_fixtures, tmp_path):
    outcome = run_case(case, fuzz_fixtures, tmp_path)
    result = classify(case, outcome)
    RESULTS[(case.kind, result)] += 1
    assert result == "ok", (f"{result}: exit {outcome.code}, stderr {outcome.stderr[-800:]!r}, "
                            f"stray {outcome.stray[:3]}")
