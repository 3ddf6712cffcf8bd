"""What is mounted where, from /proc/self/mountinfo (the share pool and the stack's
`down` both need it)."""

from __future__ import annotations

import re


def unescape(field: str) -> str:
    """mountinfo writes a space as \\040 (also tab, newline, backslash)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts() -> list[tuple[str, str]]:
    """(fs root, mount point) of every mount, in mount order."""
    with open("/proc/self/mountinfo") as f:
        rows = [line.split() for line in f]
    return [(unescape(r[3]), unescape(r[4])) for r in rows if len(r) > 4]
