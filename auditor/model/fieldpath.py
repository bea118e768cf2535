"""Dotted field paths with bracketed keys: `health_check.interval_seconds`, `attributes["a.b"]`,
`target_groups[web-*-tg].port`. One parser for team-rule conditions and diff patterns."""

from __future__ import annotations

import re
from typing import Any

_SEGMENT = re.compile(r'\["([^"]*)"\]|\[([^\]]*)\]|([^.\[]+)')


def segments(path: str) -> list[str]:
    """`a.b["c.d"][KEY]` → ["a", "b", "c.d", "[KEY]"]: quoted keys unquoted, bare brackets kept."""
    out = []
    for quoted, key, plain in _SEGMENT.findall(path):
        out.append(quoted if quoted else (f"[{key}]" if key or plain == "" else plain))
    return out


def lookup(value: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of a field path inside plain data."""
    for name in segments(path):
        name = name[1:-1] if name.startswith("[") and name.endswith("]") else name
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


_PLAIN = re.compile(r"^[A-Za-z0-9_*-]+$")


def join(parts: tuple[str, ...]) -> str:
    """The inverse of ``segments`` for plain keys: a key that is not a plain word (a dot, a space, a
    location path `/`) is quoted."""
    out = ""
    for part in parts:
        if not _PLAIN.match(part):
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out
