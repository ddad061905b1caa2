"""Cases the campaign still fails whose fix belongs to a plug-in's owners: xfailed (not strict) with a reason,
so that the fix shows up as XPASS. Everything in app/ and plugins/demo must pass."""

from __future__ import annotations

from tests.fuzz.corpus import Case

# regenerate the groups with `python bench/fuzz_campaign.py --long --known FILE` (keep the ones still failing)
_GROUPS: list[tuple[str, tuple[str, ...]]] = []  # every plug-in-owned case passes now
KNOWN: dict[str, str] = {case_id: reason for reason, ids in _GROUPS for case_id in ids}  # case id -> what is wrong


def owner_of(case: Case) -> str | None:
    """The plug-in that owns the command a case runs, or None for the app and the demo plug-in."""
    args = [a for a in case.argv if not a.startswith("{")]
    if case.argv[:1] == ("--home",):
        args = list(case.argv[2:])
    head = args[0] if args else ""
    return {"holo": "holography", "ecg": "ecg", "clip": "textsearch", "retrieval": "retrieval"}.get(head)


def describe(result: str, stderr_lines: list[str], tmp: str = "") -> str:
    """A short reason for a failed case (what bench/fuzz_campaign.py --known writes)."""
    text = "\n".join(stderr_lines)
    if result == "multi-line" and ("libpng" in text or "JPEG" in text or "TIFF" in text.split(":", 1)[0]):
        return ("multi-line: libpng/libjpeg messages leak to stderr (decode inside app.core.quiet.quiet_c_stderr, "
                "check the header first with app.core.io.images.check_image_header)")
    if result == "multi-line" and "skipped" in text:
        return "multi-line: a batch prints 'skipped P: P: msg' (path twice) plus a summary line"
    last = (stderr_lines or ["(no message)"])[-1].replace(tmp, "").replace("vitascope: ", "")
    if result == "wrong exit" and not stderr_lines:
        last = "accepted (exit 0) where a refusal is due"
    return f"{result}: {last[:100]}".replace('"', "'").replace("\\", "/")
