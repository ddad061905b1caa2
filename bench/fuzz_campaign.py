"""The bad-input fuzz campaign (tests/fuzz/corpus.py) run outside pytest: every case through `app.cli.main` in this
process (cases that could block run as child processes), then a counts table by kind and outcome on stdout.

    OMP_NUM_THREADS=1 python bench/fuzz_campaign.py [--long] [--failures] [--only PREFIX]"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzz.corpus import all_cases  # noqa: E402
from tests.fuzz.fixtures import build_fixtures  # noqa: E402
from tests.fuzz.known import describe, owner_of  # noqa: E402
from tests.fuzz.runner import OUTCOMES, classify, run_case  # noqa: E402


def table(rows: Counter, kinds: list[str]) -> str:
    head = f"{'kind':10s} {'cases':>6s} " + " ".join(f"{o:>11s}" for o in OUTCOMES)
    lines = [head, "-" * len(head)]
    for kind in kinds + ["total"]:
        counts = [sum(v for (k, o), v in rows.items() if (k == kind or kind == "total") and o == out)
                  for out in OUTCOMES]
        lines.append(f"{kind:10s} {sum(counts):6d} " + " ".join(f"{c:11d}" for c in counts))
    return "\n".join(lines)


def known_source(failures: list, tmp: str) -> str:
    """The plug-in-owned failures as Python source for tests/fuzz/known.py: (reason, case ids) groups."""
    groups: dict[str, list[str]] = {}
    for case, result, o in failures:
        if owner_of(case):
            groups.setdefault(describe(result, o.err_lines, tmp), []).append(case.id)
    out = ["_GROUPS: list[tuple[str, tuple[str, ...]]] = ["]
    for reason, ids in groups.items():
        chunks = textwrap.wrap(reason, 100, drop_whitespace=False)
        out.append("    (" + "\n     ".join(repr(c) for c in chunks) + ",")
        out.extend("     " + line for line in textwrap.wrap("(" + ", ".join(repr(i) for i in ids) + ",)),", 110,
                                                            break_on_hyphens=False, break_long_words=False))
    out.append("]")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--long", action="store_true", help="also the fuzz_long cases")
    ap.add_argument("--failures", action="store_true", help="list every case that broke its promise")
    ap.add_argument("--only", default="", help="only cases whose id starts with this")
    ap.add_argument("--slowest", type=int, default=0, help="list the N slowest cases")
    ap.add_argument("--known", default="", help="write the plug-in-owned failures as a KNOWN dict to this file")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cases = [c for c in all_cases(args.long) if c.id.startswith(args.only)]
    rows: Counter = Counter()
    failures = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vitascope-fuzz-") as tmp:
        fixtures = build_fixtures(Path(tmp) / "fixtures")
        timings = []
        for case in cases:
            t1 = time.perf_counter()
            outcome = run_case(case, fixtures, Path(tmp) / "cases")
            timings.append((time.perf_counter() - t1, case.id))
            result = classify(case, outcome)
            rows[(case.kind, result)] += 1
            if result != "ok":
                failures.append((case, result, outcome))
    seconds = time.perf_counter() - t0
    kinds = sorted({c.kind for c in cases})
    print(f"fuzz campaign: {len(cases)} cases in {seconds:.0f} s")
    print(table(rows, kinds))
    ok = sum(v for (_, o), v in rows.items() if o == "ok")
    print(f"kept the promise: {ok}/{len(cases)} ({100 * ok / max(1, len(cases)):.1f} %)")
    for seconds_, cid in sorted(timings, reverse=True)[:args.slowest]:
        print(f"{seconds_:7.2f} s  {cid}")
    if args.failures:
        for case, result, o in failures:
            first = (o.err_lines or [""])[-1][:160]
            print(f"{result:11s} {case.id:45s} owner={owner_of(case) or 'app':11s} exit={o.code} "
                  f"lines={len(o.err_lines)} {first}" + (f" stray={o.stray[:2]}" if o.stray else ""))
    if args.known:
        Path(args.known).write_text(known_source(failures, tmp), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
