"""A Dockerfile read for what a locally built image is: the image it starts FROM, the ports it EXPOSEs,
the files it COPYs in from the build context, the RUN lines that change files, CMD and ENTRYPOINT.

Only the build's target stage counts (compose's `build.target`, else the last stage), with what it
inherits from earlier stages it is built FROM. Build arguments are substituted from their `ARG`
defaults and compose's `build.args`; a value audit cannot know stays as written.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.collect.host import variables
from auditor.errors import AuditError


class DockerfileError(AuditError):
    """A Dockerfile that cannot be read for a service's build."""


@dataclass
class Copy:
    sources: list[str]  # relative to the build context
    destination: str
    line: int


@dataclass
class Stage:
    base: str  # the FROM image, or an earlier stage's name
    name: str | None
    expose: list[int] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    runs: list[tuple[int, str]] = field(default_factory=list)  # (line, command)
    cmd: str | None = None
    entrypoint: str | None = None
    workdir: str = "/"


@dataclass
class Image:
    """What the target stage of a build is, with its inherited stages folded in."""

    base: str  # the pulled image it ultimately starts from
    context: Path
    dockerfile: Path
    expose: list[int] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)  # in build order
    runs: list[tuple[int, str]] = field(default_factory=list)
    cmd: str | None = None
    entrypoint: str | None = None


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions with their continuation lines joined, each with its first line's number."""
    out: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped by the builder too
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1])
            continue
        current.append(stripped)
        out.append((start, " ".join(current)))
        current = []
    if current:
        out.append((start, " ".join(current)))
    return out


def _words(value: str) -> str:
    """The exec form `["a", "b"]` or the shell form, as one command line."""
    value = value.strip()
    if value.startswith("["):
        try:
            return shlex.join(str(part) for part in json.loads(value))
        except json.JSONDecodeError:
            pass
    return value


def parse(text: str, args: dict[str, str] | None = None) -> list[Stage]:
    args = dict(args or {})
    defaults: dict[str, str] = {}
    stages: list[Stage] = []

    def substitute(value: str) -> str:
        return variables.build_args(value, lambda name: args.get(name, defaults.get(name)))

    for line, instruction in _logical_lines(text):
        keyword, _, rest = instruction.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "ARG":
            name, sep, default = rest.partition("=")
            if sep:
                defaults.setdefault(name.strip(), default.strip().strip("\"'"))
            continue
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                continue
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(base=substitute(words[0]), name=name))
            continue
        if not stages:
            continue
        stage = stages[-1]
        if keyword == "EXPOSE":
            for word in substitute(rest).split():
                number = word.split("/")[0]
                if number.isdigit():
                    stage.expose.append(int(number))
        elif keyword in ("COPY", "ADD"):
            try:
                words = shlex.split(rest) if not rest.startswith("[") else json.loads(rest)
            except (ValueError, json.JSONDecodeError):
                continue
            if any(w.startswith("--from") for w in words):
                continue  # from another stage or image: not the build context
            words = [substitute(w) for w in words if not w.startswith("--")]
            if len(words) >= 2:
                destination = words[-1]
                if not destination.startswith("/"):
                    destination = stage.workdir.rstrip("/") + "/" + destination
                stage.copies.append(Copy(sources=words[:-1], destination=destination, line=line))
        elif keyword == "RUN":
            stage.runs.append((line, substitute(rest)))
        elif keyword == "CMD":
            stage.cmd = _words(rest)
        elif keyword == "ENTRYPOINT":
            stage.entrypoint = _words(rest)
            stage.cmd = None  # an ENTRYPOINT resets the CMD inherited before it
        elif keyword == "WORKDIR":
            target = substitute(rest)
            stage.workdir = target if target.startswith("/") else stage.workdir.rstrip("/") + "/" + target
    return stages


def image(context: Path, dockerfile: str | None, target: str | None, args: dict[str, str] | None = None,
          inline: str | None = None) -> Image:
    """The image a compose `build:` produces, from its Dockerfile."""
    path = context / (dockerfile or "Dockerfile")
    if inline is None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DockerfileError(f"{path}: cannot read the Dockerfile of a build ({exc.strerror})") from None
    else:
        text = inline
    stages = parse(text, args)
    if not stages:
        raise DockerfileError(f"{path}: no FROM instruction")
    by_name = {s.name: s for s in stages if s.name}
    if target is not None and target not in by_name:
        raise DockerfileError(f"{path}: build target {target!r} is no stage of it")
    chain = [by_name[target] if target else stages[-1]]
    while chain[-1].base in by_name and by_name[chain[-1].base] not in chain:
        chain.append(by_name[chain[-1].base])
    chain.reverse()
    result = Image(base=chain[0].base, context=context, dockerfile=path)
    for stage in chain:
        result.expose += stage.expose
        result.copies += stage.copies
        result.runs += stage.runs
        if stage.entrypoint is not None:
            result.entrypoint, result.cmd = stage.entrypoint, None
        if stage.cmd is not None:
            result.cmd = stage.cmd
    return result


def of_service(spec: dict[str, Any], project_dir: Path) -> tuple[Image | None, str | None]:
    """The image a compose service's `build:` produces (None without a build), or why its Dockerfile
    could not be read."""
    build = spec.get("build")
    if not build:
        return None, None
    if isinstance(build, str):
        build = {"context": build}
    context = str(build.get("context") or ".")
    if "://" in context or context.startswith("git@"):
        return None, f"the build context {context} is a remote repository, not in this checkout"
    args = build.get("args") or {}
    if isinstance(args, list):  # the list form: ["NAME=value", …]
        args = dict(str(a).partition("=")[::2] for a in args)
    try:
        return image((project_dir / context).resolve(), build.get("dockerfile"),
                     build.get("target"), {str(k): str(v) for k, v in args.items()} if isinstance(args, dict) else {},
                     build.get("dockerfile_inline")), None
    except DockerfileError as exc:
        return None, str(exc)
