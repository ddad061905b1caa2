"""The fuzz campaign's fixtures (valid inputs, built once), the `fuzz_long` gate (run with `-m fuzz_long`) and the
counts table printed at the end of the session (cases by kind: ok / traceback / multi-line / wrong exit ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.fixtures import build_fixtures
from tests.fuzz.runner import OUTCOMES, RESULTS


@pytest.fixture(scope="session")
def fuzz_fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fixtures(tmp_path_factory.mktemp("fuzz-fixtures"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without `-m fuzz_long` the long cases are deselected, so the default run stays fast (and quiet)."""
    if "fuzz_long" in (config.getoption("markexpr", "") or ""):
        return
    long = [item for item in items if "fuzz_long" in item.keywords]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if "fuzz_long" not in item.keywords]


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
