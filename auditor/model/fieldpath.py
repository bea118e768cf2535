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


def dig(value: Any, parts: tuple[str | int, ...]) -> Any:
    """The value at ``parts`` inside plain data (a name into a mapping, a number into a list), or None
    where there is nothing."""
    for part in parts:
        if isinstance(part, int):
            value = value[part] if isinstance(value, list) and 0 <= part < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def lookup(value: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of a field path inside plain data."""
    for name in segments(path):
        name = name[1:-1] if name.startswith("[") and name.endswith("]") else name
        if not isinstance(value, dict) or name not in value:
            return False, None
        value = value[name]
    return True, value


_PLAIN = re.compile(r"^[A-Za-z0-9_*-]+$")


def join(parts: tuple[str | int, ...]) -> str:
    """The inverse of ``segments`` for plain keys: a key that is not a plain word (a dot, a space, a
    location path `/`) is quoted; a list index is `[N]` (`default_action[0].target_group_arn`)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN.match(part):
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out
