"""Typed data: plain data (parsed YAML or JSON) as msgspec Structs, and why it does not fit, in words.

One library reads every file audit takes: snapshots, audit.yaml, rule files. msgspec checks a value
against its type while it converts it, and stops at the first problem. Its message names the place
as ``$.environments[...].hosts[0]``, leaving out the keys of a mapping; `problem` puts them back by
walking the data beside the types, so an error names the key a person wrote.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import msgspec

M = TypeVar("M")

_MESSAGE = re.compile(r"(?P<message>.*?)(?: - at `\$(?P<where>[^`]*)`)?", re.DOTALL)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TYPE_WORDS = {"array": "a list", "object": "a mapping", "str": "text", "int": "an integer", "float": "a number",
               "bool": "true or false", "null": "nothing"}


class Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A part of a file a person writes (audit.yaml, a rule file): an unknown key is a mistake, named.
    Snapshots are read the other way: a newer auditor's extra facts are ignored."""


def _from_text(kind: type, value: Any) -> Any:
    # The one type msgspec does not read itself: a path, written as text.
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise TypeError(f"expected a path, got {value!r}")  # msgspec says it with the place


def typed(data: Any, model: type[M]) -> M:
    """Plain data as a model, read as a person means it: lax about "80" for 80, and about 80 for "80"
    (on a second try, so well-typed data pays nothing). msgspec.ValidationError when it does not fit."""
    try:
        return msgspec.convert(data, model, strict=False, dec_hook=_from_text)
    except msgspec.ValidationError:
        return msgspec.convert(_lenient(data, msgspec.inspect.type_info(model)), model, strict=False,
                               dec_hook=_from_text)


def _lenient(value: Any, info: msgspec.inspect.Type) -> Any:
    """A number where text is expected becomes that text (`"port": 8080`, `Version: 2` in a tag)."""
    mi = msgspec.inspect
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        kinds = info.types if isinstance(info, mi.UnionType) else (info,)
        numeric = any(isinstance(k, (mi.IntType, mi.FloatType)) for k in kinds)
        return str(value) if not numeric and any(isinstance(k, mi.StrType) for k in kinds) else value
    if isinstance(info, mi.UnionType):  # `X | None`: the structured member reads the value
        structured = [t for t in info.types if not isinstance(t, (mi.NoneType, mi.StrType, mi.IntType,
                                                                       mi.FloatType, mi.BoolType))]
        return _lenient(value, structured[0]) if len(structured) == 1 else value
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f.type for f in info.fields}
        return {k: _lenient(v, fields[k]) if k in fields else v for k, v in value.items()}
    if isinstance(info, mi.ListType) and isinstance(value, list):
        return [_lenient(v, info.item_type) for v in value]
    if isinstance(info, mi.DictType) and isinstance(value, dict):
        return {k: _lenient(v, info.value_type) for k, v in value.items()}
    return value


def problem(exc: msgspec.ValidationError, data: Any, model: type) -> tuple[list[str | int], str]:
    """Where ``data`` does not fit ``model`` and why, in words: (``["environments", "dev", "hosts", 0,
    "port"]``, ``expected an integer >= 1, got 0``). A missing or unknown key's path ends with that key."""
    match = _MESSAGE.fullmatch(str(exc))
    message, where = (match["message"], match["where"] or "") if match else (str(exc), "")
    keys: list[str | int] = []
    value, kind = data, model
    for name, index in _SEGMENT.findall(where):
        if index == "...":  # a mapping's key msgspec left out: the first entry that does not fit
            value_type = _arguments(kind)[1] if len(_arguments(kind)) == 2 else Any
            key = next((k for k, v in value.items() if not _fits(v, value_type)), None) \
                if isinstance(value, dict) else None
            keys.append(str(key) if key is not None else "...")
            value, kind = (value.get(key) if key is not None else None), value_type
        elif index:
            keys.append(int(index))
            value = value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            kind = _arguments(kind)[0] if _arguments(kind) else Any
        else:
            keys.append(name)
            value = value.get(name) if isinstance(value, dict) else None
            kind = _field_type(kind, name)
    named = re.fullmatch(r"Object (?:missing required|contains unknown) field `(.+)`", message)
    if named:
        keys.append(named[1])
    return keys, _describe(message, kind, value)


def key_path(keys: list[str | int]) -> str:
    """`environments.dev.hosts[0]`; "" at the top."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def _describe(message: str, kind: Any, value: Any) -> str:
    """msgspec's message in plain words, with the value found when that helps."""
    if message.startswith("Object contains unknown field"):
        return "unknown key"
    if message.startswith("Object missing required field"):
        return "required key is missing"
    if message.startswith("Invalid RFC3339 encoded date"):
        return f"expected a date like 2027-01-31, got {value!r}"
    literal = _literal_values(kind)
    if message.startswith("Invalid enum value") and literal:
        options = [repr(v) for v in literal]
        listed = options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"
        return f"expected {listed}, got {value!r}" if value is not None else f"expected {listed}"
    expected = re.fullmatch(r"Expected `(\w+)`(.*?), got `(\w+)`", message)
    if expected:
        word = _TYPE_WORDS.get(expected[1], expected[1])
        return f"expected {word}{expected[2]}, got {value!r}" if value is not None else \
            f"expected {word}{expected[2]}, got {_TYPE_WORDS.get(expected[3], expected[3])}"
    constraint = re.fullmatch(r"Expected `(\w+)` (.+)", message)
    if constraint:
        got = f", got {value!r}" if value is not None else ""
        return f"expected {_TYPE_WORDS.get(constraint[1], constraint[1])} {constraint[2]}{got}"
    return message


def _fits(value: Any, kind: Any) -> bool:
    try:
        typed(value, kind)
    except msgspec.ValidationError:
        return False
    return True


def _unwrapped(kind: Any) -> Any:
    """The type under `Annotated[...]` and `X | None`, when one structured type is left."""
    while typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) in (Union, types.UnionType):
        members = [k for k in typing.get_args(kind) if k is not type(None)]
        if len(members) == 1:
            return _unwrapped(members[0])
        structured = [k for k in members if typing.get_origin(_unwrapped(k)) in (list, dict)
                      or isinstance(k, type) and issubclass(k, msgspec.Struct)]
        return _unwrapped(structured[0]) if len(structured) == 1 else kind
    return kind


def _arguments(kind: Any) -> tuple[Any, ...]:
    return typing.get_args(_unwrapped(kind))


def _field_type(kind: Any, name: str) -> Any:
    kind = _unwrapped(kind)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return next((f.type for f in msgspec.structs.fields(kind) if f.encode_name == name), Any)
    return Any


def _literal_values(kind: Any) -> tuple[Any, ...]:
    kind = _unwrapped(kind)
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else ()


def plain(model: Any) -> Any:
    """A model as JSON-ready data, fields in their declared order; a path or other object as its text."""
    return msgspec.to_builtins(model, enc_hook=str)
