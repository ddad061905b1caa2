"""The fuzz campaign's fixtures (valid inputs, built once), the `fuzz_long` gate (run with `-m fuzz_long`) and the
counts table printed at the end of the session (cases by kind: ok / traceback / multi-line / wrong exit ...)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.fuzz.fixtures import build_fixtures
from tests.fuzz.runner import OUTCOMES

RESULTS: Counter = Counter()  # (kind, outcome) -> cases, filled by test_fuzz_cli


@pytest.fixture(scope="session")
def fuzz_fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixtures(tmp_path_factory.mktemp("fuzz-fixtures"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "fuzz_long" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="long fuzz case: run with -m fuzz_long")
    for item in items:
        if "fuzz_long" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not RESULTS:
        return
    kinds = sorted({k for k, _ in RESULTS})
    tr = terminalreporter
    tr.section("fuzz campaign: cases by kind and outcome")
    tr.write_line(f"{'kind':10s} {'cases':>6s} " + " ".join(f"{o:>11s}" for o in OUTCOMES))
    for kind in [*kinds, "total"]:
        counts = [sum(v for (k, o), v in RESULTS.items() if (kind in ("total", k)) and o == out) for out in OUTCOMES]
        tr.write_line(f"{kind:10s} {sum(counts):6d} " + " ".join(f"{c:11d}" for c in counts))
