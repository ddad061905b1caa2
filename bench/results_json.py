"""What the bench scripts that report JSON share: the results printed, and written to `--out` when given."""

from __future__ import annotations

import json
from pathlib import Path


def report(res: dict, out: str | None) -> None:
    """Print `res` as indented JSON; with `out`, also write it there (creating the folder)."""
    text = json.dumps(res, indent=1)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
