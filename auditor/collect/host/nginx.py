"""Nginx: parse a config (files, or an `nginx -T` dump) with crossplane into snapshot facts.

crossplane reads one file at a time here (single=True) and includes are
followed by us, so files on disk and a dump printed by `nginx -T` on another
machine go through one walker. What nginx would refuse to load is recorded, not
raised (N500): crossplane's syntax and argument errors per file, and context
errors checked by us once includes are in place — a conf.d snippet's `server {}`
is judged inside the `http {}` that includes it, and a site file that holds only
server blocks is read as if inside `http {}`.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import crossplane
from crossplane.analyzer import analyze, enter_block_ctx
from crossplane.errors import NgxParserBaseException

from auditor.collect.host import nginx_lexer  # noqa: F401 - puts the linear lexer under crossplane's parser
from auditor.errors import HOST_FILE_LIMIT, AuditError, too_large
from auditor.model.snapshot import (
    IfHeaders,
    Listen,
    NginxLocation,
    MissingInclude,
    NginxConfig,
    NginxIgnore,
    NginxServer,
    Redactor,
    Refusal,
    Upstream,
    UpstreamServer,
    Variable,
)

_DUMP_HEADER = re.compile(r"^# configuration file (?P<path>.+):\s*$", re.MULTILINE)
# Contexts that hold no http servers: their `server` blocks are not on an HTTP path.
_OTHER_PROTOCOLS = {"stream", "mail", "events", "types", "map", "geo", "split_clients", "if", "limit_except"}


class NginxError(AuditError):
    """An nginx config that cannot be read; the message names file and line."""


Directive = dict[str, Any]
Placed = tuple[Directive, str]  # a directive and the file it came from


# Files every nginx image ships in its prefix: an include of one is never missing, and never read from
# the machine running audit (they hold only types and *_param lines, which no rule reads).
STOCK_FILES = {"mime.types", "fastcgi_params", "fastcgi.conf", "uwsgi_params", "scgi_params", "koi-utf", "koi-win",
               "win-utf"}
# `listen` parameters nginx accepts after the address (`name=value` ones by their name).
_LISTEN_FLAGS = {"default_server", "default", "ssl", "http2", "quic", "proxy_protocol", "deferred", "bind",
                 "reuseport", "so_keepalive", "setfib", "fastopen", "backlog", "rcvbuf", "sndbuf", "accept_filter",
                 "ipv6only"}


# An envsubst placeholder (`${NGINX_WORKER_PROCESSES}`): left in a file audit rendered, nginx refuses it.
_LEFT_OVER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Placeholders a start script fills in (envsubst's, or `{domain_name}` for sed): such a file is a template,
# not what nginx loads.
# Both branches start with a literal, so the search skips to a `$` or `{` (linear in a 10 MB line).
_PLACEHOLDER = re.compile(_LEFT_OVER.pattern + r"|\{(?<![\w$]\{)[a-z][a-z0-9_]*}")


def _parse_one(path: str, display: str, files: _Files, rendered: bool = False) -> list[Directive]:
    """One file's directives. Syntax errors (nothing of the file is read) and wrong argument counts
    (the directive is dropped) are what nginx refuses: they are recorded, and the rest is kept. A
    template is not judged: what nginx loads is its rendered form, which audit does not see. A file
    audit rendered as the start does is what nginx loads: a `${NAME}` left in it is a variable nginx
    does not know, and refuses."""
    if os.path.getsize(path) > HOST_FILE_LIMIT:
        raise NginxError(too_large(display, "nginx file", HOST_FILE_LIMIT))
    result = crossplane.parse(path, single=True, comments=True, check_ctx=False, check_args=True,
                              catch_errors=True)
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    placeholder = None if rendered else _PLACEHOLDER.search(text)
    if rendered:
        for number, line in enumerate(text.splitlines(), start=1):
            left = _LEFT_OVER.search(line.split("#")[0])
            if left:
                message = f'unknown "{left[1].lower()}" variable (${{{left[1]}}} left by the rendering)'
                files.refusals.append(Refusal(message=message, file=display, line=number))
    if placeholder:
        files.templates.add(display)
        files.unreadable.append(Refusal(message=f"a template rendered at start (placeholder "
                                                f"{placeholder.group(0)}): what nginx loads is unknown",
                                        file=display))
        return result["config"][0]["parsed"] if result["config"] else []
    refusals = files.refusals
    for error in result["errors"]:
        message = str(error.get("error", "")).split(f" in {path}")[0]
        refusals.append(Refusal(message=message, file=display, line=error.get("line") or 0))
    return result["config"][0]["parsed"] if result["config"] else []


class _Files:
    """Where included files come from: the disk, the files of an `nginx -T` dump, or a container's files.

    ``resolve`` answers an absolute pattern with the files it matches, or with a sentence when what is
    there cannot be known (a path outside the repository, a volume): unknown, never missing."""

    def __init__(self, main: str, resolve: Callable[[str], list[str] | str], read: Callable[[str], list[Directive]],
                 prefix: str | None = None):
        self.main = main
        self.prefix = prefix or os.path.dirname(main)
        self._resolve = resolve
        self._read = read
        self._cache: dict[str, list[Directive]] = {}
        self.missing: list[MissingInclude] = []
        self.ignores: list[NginxIgnore] = []
        self.refusals: list[Refusal] = []
        self.unreadable: list[Refusal] = []
        self.templates: set[str] = set()
        self.display: dict[str, str] = {}  # file -> the name findings use, when not the file itself

    def parsed(self, path: str) -> list[Directive]:
        if path not in self._cache:
            self._cache[path] = self._read(path)
        return self._cache[path]

    def name(self, path: str) -> str:
        return self.display.get(path, path)

    def include(self, directive: Directive, file: str) -> list[str]:
        pattern = directive["args"][0] if directive["args"] else ""
        if os.path.basename(pattern) in STOCK_FILES:
            return []
        # nginx resolves relative includes against its prefix: the main config's directory.
        absolute = pattern if os.path.isabs(pattern) else os.path.join(self.prefix, pattern)
        found = self._resolve(absolute)
        # A block is expanded more than once (facts, then context checks): record each include once.
        if isinstance(found, str):  # audit cannot know what is there
            unknown = Refusal(message=str(found), file=self.name(file), line=directive["line"])  # a plain str
            if unknown not in self.unreadable:
                self.unreadable.append(unknown)
            return []
        if found:
            return found
        if glob.has_magic(pattern):  # nginx starts, and silently does less (N502)
            missing = MissingInclude(pattern=pattern, file=self.name(file), line=directive["line"])
            if missing not in self.missing:
                self.missing.append(missing)
        else:  # nginx refuses to start (N500)
            refusal = Refusal(message=f'open() "{pattern}" failed (No such file or directory)', file=self.name(file),
                              line=directive["line"])
            if refusal not in self.refusals:
                self.refusals.append(refusal)
        return []

    def comment(self, directive: Directive, file: str) -> None:
        match = _IGNORE.match(directive.get("comment", ""))
        if match:
            ignore = NginxIgnore(rule=match[1], reason=match[2].strip(), file=file, line=directive["line"] + 1)
            if ignore not in self.ignores:  # a block expanded twice reads its comments twice
                self.ignores.append(ignore)

    @property
    def files(self) -> list[str]:
        return [self.name(path) for path in self._cache]


def _expand(directives: list[Directive], file: str, files: _Files, stack: tuple[str, ...] = ()) -> Iterator[Placed]:
    """The directives of a block with every `include` replaced by what it includes."""
    for directive in directives:
        if directive["directive"] == "#":
            files.comment(directive, file)
            continue
        if directive["directive"] != "include":
            yield directive, file
            continue
        for path in files.include(directive, file):
            if path in stack or path == file:
                raise NginxError(f"{file}:{directive['line']}: include loop through {path}")
            yield from _expand(files.parsed(path), files.name(path), files, stack + (file,))


def _refusals(placed: list[Placed], ctx: tuple[str, ...], files: _Files) -> None:
    """Record what nginx refuses in a block whose includes are in place: a directive in a context it
    does not allow (crossplane's directive table; directives it does not know are not judged), and
    `listen` parameters nginx does not know (a missing `;` after `listen 80` makes the next
    directive a parameter)."""
    for directive, file in placed:
        if file in files.templates:
            continue
        term = "{" if "block" in directive else ";"
        try:
            # Argument counts are judged here too: crossplane knows a directive's counts only in its context.
            analyze(file, directive, term, ctx, check_ctx=True, check_args=True)
        except NgxParserBaseException as exc:
            refusal = Refusal(message=exc.strerror, file=file, line=directive["line"])
            if refusal not in files.refusals:
                files.refusals.append(refusal)
            continue
        if directive["directive"] == "listen" and not {"stream", "mail"} & set(ctx):  # `udp` is stream's
            unknown = [a for a in directive["args"][1:] if a.split("=", 1)[0] not in _LISTEN_FLAGS]
            if unknown:
                files.refusals.append(Refusal(message=f'invalid parameter "{unknown[0]}" in "listen"', file=file,
                                              line=directive["line"]))
        if "block" in directive:
            _refusals(list(_expand(directive["block"], file, files)), enter_block_ctx(directive, ctx), files)


def _top_context(placed: list[Placed]) -> tuple[str, ...] | None:
    """A main file with `http`/`events`/`stream` is a whole config; one with server blocks (a site
    file, as conf.d holds) is read as if inside `http {}`; a fragment of other directives is included
    somewhere audit cannot see, so its context is not judged (None)."""
    names = {directive["directive"] for directive, _ in placed}
    if names & {"http", "events", "stream", "mail"}:
        return ()
    return ("http",) if names & {"server", "upstream", "map"} else None


def parse_listen(args: list[str]) -> Listen | None:
    """`listen` in every form nginx takes; None for a unix socket."""
    address, flags = args[0], set(args[1:])
    if address.startswith("unix:"):
        return None
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":") or "80"
    elif address.isdigit():
        host, port = None, address
    elif ":" in address:
        host, port = address.rsplit(":", 1)
    else:
        host, port = address, "80"
    if not port.isdigit():
        raise NginxError(f'invalid port in "{address}" of the "listen" directive')
    return Listen(
        address=None if host in (None, "*") else host,
        port=int(port),
        ssl="ssl" in flags,
        http2="http2" in flags,
        default_server=bool(flags & {"default_server", "default"}),
    )


# Directives the snapshot models in their own fields (or that are structure): not repeated in `directives`.
_MODELLED = {"#", "include", "listen", "server_name", "location", "set", "return", "proxy_pass", "grpc_pass", "root",
             "alias", "internal"}
# Directives that set a named value (a header, a FastCGI parameter): the value may be a secret.
_NAMED_VALUES = {"proxy_set_header", "add_header", "fastcgi_param", "uwsgi_param", "scgi_param", "grpc_set_header",
                 "more_set_headers", "add_trailer"}
_ONLY_VARIABLES = re.compile(r"^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|[\s,;:/._-])*$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}
# Settings a server inherits from http unless it sets its own.
_INHERITED = ("keepalive_timeout", "proxy_read_timeout", "server_tokens", "resolver")
_VARIABLE_BLOCKS = {"map": 1, "geo": -1, "split_clients": 1}  # index of the variable the block defines
_IGNORE = re.compile(r"^\s*audit:ignore\s+([A-Z][0-9]{3})\b\s*(.*)$")
# A named capture in an nginx (PCRE) regex: (?<name>…), (?P<name>…) or (?'name'…).
_CAPTURE = re.compile(r"\(\?P?(?:<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')")
# Directives whose arguments may hold a regex with captures that define variables.
_REGEX_DIRECTIVES = {"location", "server_name", "if", "rewrite", "map"}


def captures(text: str) -> list[str]:
    return [a or b for a, b in _CAPTURE.findall(text)]


def duration(value: str) -> float | None:
    """An nginx time (`75`, `75s`, `1m`, `500ms`) in seconds; None when it is not one."""
    match = _DURATION.match(value.strip())
    return float(match[1]) * _UNITS[match[2]] if match else None


class _Level:
    """What one context (http, server, location) sets, its own directives gathered before its blocks:
    nginx applies a setting wherever in the block it stands."""

    def __init__(self, parent: _Level | None, placed: list[Placed]) -> None:
        self.settings: dict[str, tuple[str, str, int]] = dict(parent.settings) if parent else {}
        self.headers: dict[str, str] = dict(parent.headers) if parent else {}
        above = list(parent.add_headers) if parent else []
        # add_header_inherit (nginx 1.29.3): on (the default), merge (the level adds to what is above), off.
        self.add_header_inherit: str = parent.add_header_inherit if parent else "on"
        own_headers: dict[str, str] = {}
        own_add: list[str] = []
        for directive, file in placed:
            name, args = directive["directive"], directive["args"]
            if name in _INHERITED and args:
                self.settings[name] = (" ".join(args), file, directive["line"])
            elif name == "proxy_set_header" and len(args) >= 2:
                own_headers[args[0]] = args[1]
            elif name == "add_header" and args:
                own_add.append(args[0])
            elif name == "add_header_inherit" and args:
                self.add_header_inherit = args[0]
        # proxy_set_header and add_header are inherited only by a level that sets none of its own.
        if own_headers:
            self.headers = own_headers
        if self.add_header_inherit == "merge":
            self.add_headers = above + [h for h in own_add if h not in above]
        elif own_add or self.add_header_inherit == "off":
            self.add_headers = own_add
        else:
            self.add_headers = above
        self.own_add_headers = own_add

    def seconds(self, name: str) -> float | None:
        return duration(self.settings[name][0].split()[0]) if name in self.settings else None


class _Walker:
    def __init__(self, files: _Files, redactor: Redactor) -> None:
        self.files = files
        self.redactor = redactor
        self.servers: list[NginxServer] = []
        self.upstreams: list[Upstream] = []
        self.variables: list[Variable] = []
        self.maps: list[str] = []

    def expand(self, directives: list[Directive], file: str) -> list[Placed]:
        return list(_expand(directives, file, self.files))

    def walk(self, placed: list[Placed], level: _Level | None = None) -> None:
        level = _Level(level, placed)
        for directive, file in placed:
            name = directive["directive"]
            block = directive.get("block")
            if name in _VARIABLE_BLOCKS and directive["args"]:
                self.maps.append(directive["args"][_VARIABLE_BLOCKS[name]].lstrip("$"))
            self.regex_captures(directive)
            if name in _OTHER_PROTOCOLS:
                continue
            if name == "server" and block is not None:
                self.server(directive, file, level)
            elif name == "upstream" and block is not None and directive["args"]:
                self.upstream(directive, file)
            elif name == "set":
                self.variable(directive, file)
            elif block is not None:
                self.walk(self.expand(block, file), level)

    def regex_captures(self, directive: Directive) -> None:
        """Named captures define variables wherever nginx matches a regex; map values are regexes too."""
        if directive["directive"] in _REGEX_DIRECTIVES:
            for arg in directive["args"]:
                self.maps.extend(captures(arg))
        if directive["directive"] == "map":
            for entry in directive.get("block", []):
                self.maps.extend(captures(entry["directive"]))

    def variable(self, directive: Directive, file: str) -> None:
        args = directive["args"]
        if len(args) >= 2 and args[0].startswith("$"):
            self.variables.append(Variable(name=args[0][1:], value=args[1], file=file, line=directive["line"]))

    def upstream(self, directive: Directive, file: str) -> None:
        servers = []
        for child, child_file in self.expand(directive["block"], file):
            if child["directive"] == "server" and child["args"]:
                params = set(child["args"][1:])
                servers.append(UpstreamServer(address=child["args"][0], backup="backup" in params,
                                              resolve="resolve" in params,
                                              down="down" in params, file=child_file, line=child["line"]))
        self.upstreams.append(Upstream(name=directive["args"][0], file=file, line=directive["line"], servers=servers))

    def server(self, directive: Directive, file: str, parent: _Level) -> None:
        placed = self.expand(directive["block"], file)
        level = _Level(parent, placed)
        server = NginxServer(file=file, line=directive["line"], add_headers=level.add_headers,
                             keepalive_timeout=level.seconds("keepalive_timeout"),
                             proxy_read_timeout=level.seconds("proxy_read_timeout"),
                             server_tokens=level.settings["server_tokens"][0] if "server_tokens" in level.settings
                             else None, resolver="resolver" in level.settings)
        for name, (_, where_file, line) in level.settings.items():
            server.lines[name] = line
            if where_file != file:
                server.files[name] = where_file
        http2 = False
        for child, child_file in placed:
            name, args = child["directive"], child["args"]
            self.regex_captures(child)
            if "block" not in child and name not in _MODELLED:
                server.directives.setdefault(name, []).append(self._written(name, args))
            if name == "listen" and args:
                try:
                    listen = parse_listen(args)
                except NginxError as exc:  # nginx refuses it too: N500, and the server listens on nothing
                    self.files.refusals.append(Refusal(message=str(exc), file=child_file, line=child["line"]))
                    continue
                if listen:
                    server.listen.append(listen)
            elif name == "server_name":
                server.server_names.extend(args)
            elif name == "http2" and args == ["on"]:
                http2 = True
            elif name == "return" and args and server.return_code is None:
                server.return_code, server.return_text = self._return(args)
                server.lines["return"] = child["line"]
            elif name == "set":
                self.variable(child, child_file)
            elif name == "location" and "block" in child:
                self.location(child, child_file, server, level)
        if not server.listen:
            server.listen.append(Listen(port=80))  # nginx's default for a server without listen
        if http2:
            for listen in server.listen:
                listen.http2 = True
        self.servers.append(server)

    def location(self, directive: Directive, file: str, server: NginxServer, parent: _Level) -> None:
        args = directive["args"]
        modifier, path = (args[0], args[1]) if len(args) > 1 else ("", args[0] if args else "")
        if path.startswith("@"):
            modifier = "@"
        placed = self.expand(directive["block"], file)
        level = _Level(parent, placed)
        location = NginxLocation(path=path, modifier=modifier, file=file, line=directive["line"],
                            captures=captures(path) if modifier in ("~", "~*") else [],
                            headers={k: self.redactor.named(k, v) for k, v in level.headers.items()},
                            add_headers=level.own_add_headers if level.add_header_inherit == "on" else [],
                            inherited_add_headers=list(parent.add_headers),
                            proxy_read_timeout=level.seconds("proxy_read_timeout"))
        nested = []
        for child, child_file in placed:
            name, child_args = child["directive"], child["args"]
            location.lines.setdefault(name, child["line"])
            if "block" not in child and name not in _MODELLED:
                location.directives.setdefault(name, []).append(self._written(name, child_args))
            if name in ("proxy_pass", "grpc_pass") and child_args:
                setattr(location, name, child_args[0])
            elif name == "return" and child_args:
                location.return_code, location.return_text = self._return(child_args)
            elif name in ("root", "alias") and child_args:
                setattr(location, name, child_args[0])
            elif name == "set":
                self.variable(child, child_file)
            elif name == "internal":
                location.internal = True
            elif name == "location" and "block" in child:
                nested.append((child, child_file))
            elif name == "if" and "block" in child:
                inner = _Level(level, self.expand(child["block"], child_file))
                if inner.own_add_headers and inner.add_header_inherit == "on":
                    location.if_add_headers.append(IfHeaders(line=child["line"], file=child_file,
                                                             add_headers=inner.own_add_headers))
            self.regex_captures(child)
        server.locations.append(location)
        for child, child_file in nested:
            self.location(child, child_file, server, level)

    def _written(self, name: str, args: list[str]) -> str:
        """A directive's arguments as one line; a header's or parameter's value redacted unless it is
        made of nginx variables only (`$host`, `$proxy_add_x_forwarded_for`)."""
        if name in _NAMED_VALUES and len(args) >= 2 and not _ONLY_VARIABLES.match(" ".join(args[1:])):
            return f"{args[0]} {self.redactor.named(args[0], ' '.join(args[1:]))}"
        return " ".join(args)

    def _return(self, args: list[str]) -> tuple[int, str | None]:
        if not args[0].isdigit():
            return 302, args[0]
        code = int(args[0])
        text = args[1] if len(args) > 1 else None
        # A redirect's URL is configuration; a response body is free text.
        return code, text if text is None or 300 <= code < 400 else self.redactor.value(text)

    def result(self) -> NginxConfig:
        return NginxConfig(files=self.files.files, refusals=self.files.refusals, unreadable=self.files.unreadable,
                           servers=self.servers,
                           upstreams=self.upstreams,
                           variables=self.variables, missing_includes=self.files.missing,
                           maps=sorted(set(self.maps)), ignores=self.files.ignores)


def _collect(files: _Files, redactor: Redactor) -> NginxConfig:
    walker = _Walker(files, redactor)
    placed = walker.expand(files.parsed(files.main), files.name(files.main))
    walker.walk(placed)
    context = _top_context(placed)
    if context is not None:
        _refusals(placed, context, files)
    return walker.result()


# Where nginx's own files live on a Debian host and in every official image: an absolute include under
# it is looked for beside the main config, which stands for this directory.
DEFAULT_PREFIX = "/etc/nginx"


def parse_file(path: str | Path, redactor: Redactor | None = None, prefix: str | None = None) -> NginxConfig:
    """Parse a config in the repository, following its includes there, never on the machine running audit.

    Relative includes resolve against the main file's directory; an absolute one under ``prefix`` (the
    directory the main file stands for on its host, default /etc/nginx) is looked for below the main file's
    directory. What is not found there is unknown, unless ``prefix`` was declared: then it is missing."""
    main = str(Path(path).resolve())
    if not os.path.isfile(main):
        raise NginxError(f"{path}: nginx config not found")
    here = os.path.dirname(main)
    stands_for = (prefix or DEFAULT_PREFIX).rstrip("/") or "/"

    def resolve(pattern: str) -> list[str] | str:
        if pattern == here or pattern.startswith(here + os.sep):
            local = pattern
        elif pattern.startswith(stands_for + "/"):
            local = os.path.join(here, pattern[len(stands_for) + 1:])
        else:
            return f"include {pattern} is outside the repository: its contents are unknown"
        found = sorted(p for p in glob.glob(local) if os.path.isfile(p))
        if found or local == pattern or prefix is not None:
            return found
        return (f"include {pattern} is not beside {path} (declare nginx.prefix if {stands_for} is what that "
                "directory stands for): its contents are unknown")

    files = _Files(main, resolve, lambda p: _parse_one(p, p, files))
    return _collect(files, redactor or Redactor(None))


def parse_virtual(main: str, resolve: Callable[[str], list[str] | str], host_file: Callable[[str], tuple[str, str]],
                  redactor: Redactor, prefix: str, rendered: set[str] = frozenset()) -> NginxConfig:
    """A config whose paths are not the machine's (a container's): ``resolve`` answers an absolute
    pattern with those paths (or why it cannot know), ``host_file`` gives the file to read for one and
    the name findings use. Files in ``rendered`` are what a start script wrote."""

    def read(path: str) -> list[Directive]:
        local, display = host_file(path)
        files.display[path] = display
        return _parse_one(local, display, files, rendered=local in rendered)

    files = _Files(main, resolve, read, prefix)
    return _collect(files, redactor)


def split_dump(text: str) -> dict[str, str]:
    """The files of an `nginx -T` dump, in load order (the main config first)."""
    headers = list(_DUMP_HEADER.finditer(text))
    out: dict[str, str] = {}
    for header, following in zip(headers, headers[1:] + [None]):
        end = following.start() if following else len(text)
        out[header["path"].strip()] = text[header.end():end].lstrip("\n")
    return out


def parse_dump(text: str, source: str = "nginx -T", redactor: Redactor | None = None) -> NginxConfig:
    """Parse what `nginx -T` printed; includes resolve against the files in the dump."""
    contents = split_dump(text)
    if not contents:
        raise NginxError(f"{source}: no '# configuration file …:' header found; is this `nginx -T` output?")
    main = next(iter(contents))
    with tempfile.TemporaryDirectory(prefix="audit-nginx-") as tmp:
        def read(path: str) -> list[Directive]:
            local = os.path.join(tmp, path.lstrip("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "w", encoding="utf-8") as handle:
                handle.write(contents[path])
            return _parse_one(local, path, files)

        def resolve(pattern: str) -> list[str]:
            return sorted(p for p in contents if fnmatch.fnmatchcase(p, pattern))

        # `nginx -T` printed every file nginx loaded: an absent one does not exist.
        files = _Files(main, resolve, read)
        return _collect(files, redactor or Redactor(None))
