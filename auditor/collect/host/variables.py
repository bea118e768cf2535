"""How a host file's `$NAME` is replaced, side by side. They are three grammars because the programs
that read those files differ, and each is copied from its program:

- Compose (``interpolate``): `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`,
  `${NAME?error}`, `${NAME:+alt}`, `${NAME+alt}`, `$$` for a dollar; any other `${…}` is an error.
- A Dockerfile's build arguments (``build_args``): `$NAME`, `${NAME}`, `${NAME:-default}`,
  `${NAME-default}`; a name nothing defines stays as written.
- envsubst (``envsubst``): `$NAME` and `${NAME}` only, every one, or with an allow-list only those.
"""

from __future__ import annotations

import re
from collections.abc import Callable

NAME = r"[A-Za-z_][A-Za-z0-9_]*"

# --- Compose -------------------------------------------------------------------------------------------

_COMPOSE = re.compile(rf"\$(?:\$|\{{(?P<braced>[^}}]*)\}}|(?P<plain>{NAME}))")
_EXPRESSION = re.compile(rf"^(?P<name>{NAME})(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def interpolate(text: str, env: dict[str, str], where: str, unset: set[str] | None,
                error: type[Exception]) -> str:
    """Compose's interpolation of ``text``. Variables that were unset and left a value empty are added
    to ``unset``; a malformed expression or a required variable unset raises ``error`` naming ``where``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expression = match["braced"] if match["braced"] is not None else match["plain"]
        found = _EXPRESSION.match(expression)
        if not found:
            raise error(f"{where}: invalid interpolation ${{{expression}}}")
        name, op, arg = found["name"], found["op"], found["arg"] or ""
        value = env.get(name)
        missing = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return interpolate(arg, env, where, unset, error) if missing else value or ""
        if op in ("?", ":?"):
            if missing:
                raise error(f"{where}: required variable {name} is not set: {arg or 'no message'}")
            return value or ""
        if op in ("+", ":+"):
            return "" if missing else interpolate(arg, env, where, unset, error)
        if value is None and unset is not None:
            unset.add(name)
        return value or ""

    return _COMPOSE.sub(substitute, text)


# --- a Dockerfile's build arguments -----------------------------------------------------------------------

_BUILD_ARG = re.compile(rf"\$(?:\{{({NAME})(?::?-([^}}]*))?\}}|({NAME}))")


def build_args(text: str, value_of: Callable[[str], str | None]) -> str:
    """``text`` with each build argument ``value_of`` knows replaced, else its default, else as written."""

    def one(match: re.Match[str]) -> str:
        known = value_of(match.group(1) or match.group(3))
        if known is not None:
            return known
        return match.group(2) if match.group(2) is not None else match.group(0)

    return _BUILD_ARG.sub(one, text)


# --- envsubst ------------------------------------------------------------------------------------------------

ENVSUBST_NAME = re.compile(rf"\$(?:\{{({NAME})\}}|({NAME}))")


def envsubst(text: str, env: dict[str, str], allow: set[str] | None) -> str:
    """What `envsubst [ALLOW]` writes: with an allow-list only those variables are replaced (by their
    value, or nothing when unset); without one every `$NAME` and `${NAME}` is, unset ones by nothing."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if allow is not None and name not in allow:
            return match.group(0)
        return env.get(name, "")

    return ENVSUBST_NAME.sub(one, text)
