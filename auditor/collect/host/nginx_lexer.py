"""nginx's tokens in one linear pass, for crossplane's parser.

crossplane 0.5's lexer builds each token a character at a time (`token = token + char`) through three
stacked generators: a 0.5 MB comment line took 21 s, a 10 MB one never ended. This lexer gives the
same `(token, line, quoted)` stream, quirks included, from regular expressions over the whole text,
so crossplane's parser and directive table still judge what nginx would refuse
(tests/collect/test_nginx_lexer.py compares both lexers on generated inputs).

What crossplane's lexer does, and so this one:
- A backslash and the character after it are one unit everywhere (`\\"` is not a quote, `\\<newline>`
  ends a line); a lone backslash at the end of the file ends the tokens.
- A line number is 1 + the newlines up to and including the unit: the first unit of a token, a
  comment's `#`, a `{`, `}` or `;` carry their own.
- A token still open at the end of the file is dropped; so is a comment or a quoted string that the
  file ends inside.
- After `${`, every unit up to one ending in `}`, or up to white space, belongs to the token, and the
  unit after that is taken as the token's next without the white-space and comment steps.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator

import crossplane.lexer
import crossplane.parser
from crossplane.errors import NgxParserSyntaxError

Token = tuple[str, int, bool]

_WHITESPACE = re.compile(r"\s+")  # str.isspace and \s agree: both are Py_UNICODE_ISSPACE
# Runs of plain characters taken whole, with escapes between them (possessive, so a 10 MB token keeps no
# backtracking stack): units that only grow a token, anything but white space, quotes, braces, `;`, `\`.
_ORDINARY = re.compile(r"(?:[^\s\"'{};\\]++|\\[\s\S])++")
# Inside `${…}`: units up to a `}` (or an escaped one), white space, or the end.
_PARAMETER = re.compile(r"(?:[^\s}\\]++|\\[^}])*+")
_QUOTED = {quote: re.compile(rf"(?:[^\\{quote}]++|\\[\s\S])*+") for quote in "\"'"}
_ESCAPE = re.compile(r"\\[\s\S]")


class _Lines:
    """The line of a unit from where it ends: 1 + the newlines before that point."""

    def __init__(self, text: str) -> None:
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def at(self, end: int) -> int:
        return 1 + bisect_left(self.newlines, end)


def _comment_end(text: str, start: int) -> tuple[int, int] | None:
    """Where the comment at ``start`` stops and where lexing goes on, or None when the file ends in it.
    It stops at the first newline; a backslash pairing with that newline (an odd run) is not part of it."""
    newline = text.find("\n", start)
    if newline < 0:
        return None
    run = newline - start - len(text[start:newline].rstrip("\\"))
    return (newline - 1 if run % 2 else newline), newline + 1


def tokens(text: str) -> Iterator[Token]:
    """crossplane's `_lex_file_object`, linear in the length of ``text``."""
    lines = _Lines(text)
    n, i = len(text), 0
    token: list[str] = []
    token_line = 0
    after_parameter = False
    while i < n:
        if text[i] == "\\" and i + 1 == n:
            return
        unit = text[i:i + 2] if text[i] == "\\" else text[i]
        if not after_parameter:
            if unit.isspace():
                if token:
                    yield "".join(token), token_line, False
                    token = []
                i = _WHITESPACE.match(text, i).end()  # type: ignore[union-attr]
                continue
            if not token and unit == "#":
                end = _comment_end(text, i)
                if end is None:
                    return
                yield text[i:end[0]], lines.at(i + 1), False
                i = end[1]
                continue
            if not token:
                token_line = lines.at(i + len(unit))
            if token and token[-1].endswith("$") and unit == "{":
                i = _parameter(text, i, token)
                if i >= n:
                    return
                after_parameter = True
                continue
        after_parameter = False
        if unit in ('"', "'"):
            if token:
                token.append(unit)
                i += 1
                continue
            body = _QUOTED[unit].match(text, i + 1).group(0)  # type: ignore[union-attr]
            end = i + 1 + len(body)
            if end >= n or text[end] != unit:  # the file ends inside the quotes
                return
            yield _ESCAPE.sub(lambda m: unit if m[0] == "\\" + unit else m[0], body), token_line, True
            i = end + 1
        elif unit in ("{", "}", ";"):
            if token:
                yield "".join(token), token_line, False
                token = []
            yield unit, lines.at(i + 1), False
            i += 1
        elif unit.isspace() or unit == "#":  # only right after `${…`: part of the token
            token.append(unit)
            i += 1
        else:
            run = _ORDINARY.match(text, i).group(0)  # type: ignore[union-attr]
            token.append(run)
            i += len(run)


def _parameter(text: str, start: int, token: list[str]) -> int:
    """Add the units of `${…` at ``start`` to ``token``; where the next unit starts, or len(text) when
    the file ends before crossplane's lexer would take one more."""
    end = _PARAMETER.match(text, start).end()  # type: ignore[union-attr]
    if text.startswith("\\}", end):
        end += 2
    elif text.startswith("}", end):
        end += 1
    elif end >= len(text) or not text[end].isspace():
        return len(text)  # the end of the file, or a lone backslash there
    token.append(text[start:end])
    return end


def balanced(stream: Iterator[Token], filename: str) -> Iterator[Token]:
    """crossplane's brace check: an unexpected `}` or an unclosed block is a syntax error."""
    depth, line = 0, 0
    for token, line, quoted in stream:
        if token == "}" and not quoted:
            depth -= 1
        elif token == "{" and not quoted:
            depth += 1
        if depth < 0:
            raise NgxParserSyntaxError('unexpected "}"', filename, line)
        yield token, line, quoted
    if depth > 0:
        raise NgxParserSyntaxError('unexpected end of file, expecting "}"', filename, line)


def lex(filename: str) -> Iterator[Token]:
    """The tokens of a file, as crossplane's `lex` gives them. A file that uses a directive with a lexer
    of its own (OpenResty's `*_by_lua_block`) is left to crossplane's, which hands those blocks to it."""
    with open(filename, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    if any(name in text for name in crossplane.lexer.EXTERNAL_LEXERS):
        yield from crossplane.lexer.lex(filename)
        return
    yield from balanced(tokens(text), filename)


# crossplane's parser reads its tokens through the module-level name `lex`: this is where the linear
# lexer goes in, once, for every parse. A crossplane without that name fails here, not silently.
if not callable(getattr(crossplane.parser, "lex", None)):
    raise ImportError("crossplane.parser.lex is gone: auditor's nginx lexer cannot be put in place")
crossplane.parser.lex = lex
