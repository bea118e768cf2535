"""The linear nginx lexer gives crossplane's parser exactly the tokens crossplane's own lexer gives,
quirks and errors included, on generated inputs; and it is the one crossplane's parser now uses."""

from __future__ import annotations

import tempfile
from pathlib import Path

import crossplane
import crossplane.lexer
import crossplane.parser
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.collect.host import nginx_lexer

# Every character the lexers treat specially, a few ordinary ones, and white space str.isspace knows.
ALPHABET = " \t\n\r\\\"'{};#$}{ab\x0b\x1c\u00a0\u2028é"
WORDS = ["server", "listen 80;", "${x}", "${a b}", "$", "{", "}", ";", "\\", "\\\n", "'", '"', "#c", "\n", " "]


def _tokens(lex, text: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nginx.conf"
        path.write_text(text, newline="")  # \r as written: both lexers read it through universal newlines
        try:
            return list(lex(str(path))), None
        except Exception as exc:  # noqa: BLE001 - the error is part of what must be equal
            return None, (type(exc).__name__, str(exc).replace(str(path), "FILE"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=ALPHABET, max_size=60) | st.lists(st.sampled_from(WORDS), max_size=30).map("".join))
@example("# comment ending in a backslash \\\nlisten 80;\n")
@example("set $a ${b} ;\nproxy_pass $x${y}z;")
@example('return 200 "a \\" b" \'c\';')
@example("server {\n}}\n")
@example("http {\n  server {\n")
@example("listen 80")  # a token the file ends inside is dropped
def test_the_linear_lexer_gives_crossplanes_tokens(text):
    assert _tokens(nginx_lexer.lex, text) == _tokens(crossplane.lexer.lex, text)


def test_crossplanes_parser_reads_with_the_linear_lexer():
    assert crossplane.parser.lex is nginx_lexer.lex


def test_a_lua_block_is_left_to_crossplanes_lexer_which_knows_it(tmp_path):
    path = tmp_path / "nginx.conf"
    path.write_text("http { server { location / { content_by_lua_block { ngx.say('}') } } } }\n")
    parsed = crossplane.parse(str(path), single=True, comments=True, check_ctx=False)
    location = parsed["config"][0]["parsed"][0]["block"][0]["block"][0]["block"][0]
    assert parsed["errors"] == [] and location["directive"] == "content_by_lua_block"
