"""How much memory this machine has available now (to refuse inputs that declare more than it can hold)."""

from __future__ import annotations

import os


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages; 8 GiB when neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 8 * 2 ** 30


def human_bytes(n: float) -> str:
    """Bytes as a short human size (MB below 1 GB, GB, TB)."""
    if n >= 1e12:
        return f"{n / 1e12:.3g} TB"
    if n >= 1e9:
        return f"{n / 1e9:.3g} GB"
    return f"{n / 1e6:.3g} MB"
