"""Cases the campaign still fails whose fix belongs to a plug-in's owners: xfailed (not strict) with a reason,
so that the fix shows up as XPASS. Everything in app/ and plugins/demo must pass."""

from __future__ import annotations

from tests.fuzz.corpus import Case

KNOWN: dict[str, str] = {}  # case id -> what is wrong


def owner_of(case: Case) -> str | None:
    """The plug-in that owns the command a case runs (holography, ecg), or None for the app and the demo."""
    args = [a for a in case.argv if not a.startswith("{")]
    if case.argv[:1] == ("--home",):
        args = list(case.argv[2:])
    head = args[0] if args else ""
    return {"holo": "holography", "ecg": "ecg"}.get(head)
