"""nginx as a compose service (DESIGN.md "Nginx inside compose"): which service it is, and the config
it loads, read from the repository through the service's bind mounts, its image's defaults and what a
local build COPYs in, never from the machine running audit.

A start command that renders the config with `envsubst SRC > DEST` is rendered the same way (with
the service's environment, the allow-list if any, positional arguments of a script); one that writes
the config otherwise (sed, a generator) leaves it unknown. The official image's
/etc/nginx/templates/*.template are rendered as its entrypoint does.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
import re
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from auditor.collect.host import dockerfile, nginx, variables
from auditor.collect.host.variables import envsubst
from auditor.collect.host.compose import Model, command_line
from auditor.model.snapshot import NginxConfig, Redactor, Refusal

# Image repositories (the last path component, any registry) that are nginx.
NGINX_IMAGES = {"nginx", "nginx-unprivileged", "openresty"}
# Front proxies that write their config at run time (from container labels or a UI): opaque.
OPAQUE_IMAGES = {"nginx-proxy", "nginx-proxy-manager", "traefik", "caddy", "haproxy", "envoy"}
PREFIX = "/etc/nginx"
DEFAULT_ENTRYPOINT = "/docker-entrypoint.sh"


def image_file(image: str, path: str) -> str:
    """How findings name a file of an image rather than of the repository."""
    return f"{image} image: {path}"


def repository(image: str) -> str:
    """`docker.io/library/nginx:1.25-alpine@sha256:…` → `nginx`."""
    return _name(image).rsplit("/", 1)[-1]


def _name(image: str) -> str:
    """The image's name without tag or digest (`localhost:5000/nginx:1.27` → `localhost:5000/nginx`)."""
    reference = image.split("@")[0].lower()
    head, _, last = reference.rpartition("/")
    return f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]


# The official images (DESIGN "Official images only"), by name on Docker Hub; a mirror or pull-through
# cache of Docker Hub's library keeps the `library/nginx` path (mirror.gcr.io/library/nginx,
# public.ecr.aws/docker/library/nginx, an ECR pull-through …/docker-hub/library/nginx).
_OFFICIAL = {"nginx": "nginx", "library/nginx": "nginx", "public.ecr.aws/nginx/nginx": "nginx",
             "nginxinc/nginx-unprivileged": "nginx-unprivileged",
             "public.ecr.aws/nginx/nginx-unprivileged": "nginx-unprivileged", "openresty/openresty": "openresty"}


def official(image: str) -> str | None:
    """Which official nginx image ``image`` is (nginx, nginx-unprivileged, openresty), any tag or digest;
    None for any other, however its name ends (`ghcr.io/mailcow/nginx` is someone's own image)."""
    name = _name(image)
    for hub in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        name = name.removeprefix(hub)
    if name.endswith("/library/nginx"):
        return "nginx"
    return _OFFICIAL.get(name)


# What every official nginx image ships in /etc/nginx besides the stock files nginx.py knows: its main
# config (which includes conf.d/*.conf) and one default server. Written here from the images' layout.
def _defaults(family: str) -> dict[str, str]:
    port = 8080 if family == "nginx-unprivileged" else 80
    return {
        f"{PREFIX}/nginx.conf": (
            "worker_processes auto;\nevents {\n    worker_connections 1024;\n}\nhttp {\n"
            "    include mime.types;\n    default_type application/octet-stream;\n    sendfile on;\n"
            "    keepalive_timeout 65;\n    include /etc/nginx/conf.d/*.conf;\n}\n"),
        f"{PREFIX}/conf.d/default.conf": (
            f"server {{\n    listen {port};\n    server_name localhost;\n    location / {{\n"
            "        root /usr/share/nginx/html;\n        index index.html index.htm;\n    }\n}\n"),
    }


@dataclass
class Mount:
    target: str
    source: Path | None  # a bind mount's host path; None: a volume or tmpfs, whose contents are unknown
    what: str  # how a person names it: "volume netbox-nginx-config", "./nginx/default.conf"


def mounts(spec: dict[str, Any], project_dir: Path) -> list[Mount]:
    out = []
    for entry in spec.get("volumes") or []:
        if isinstance(entry, dict):
            kind, source, target = entry.get("type", "volume"), str(entry.get("source") or ""), entry.get("target")
        else:
            parts = str(entry).split(":")
            if len(parts) == 1:
                kind, source, target = "volume", "", parts[0]
            else:
                source, target = parts[0], parts[1]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        if not target:
            continue
        if kind == "bind":
            host = Path(os.path.expanduser(source))
            out.append(Mount(str(target).rstrip("/") or "/", (project_dir / host).resolve(), source))
        else:
            out.append(Mount(str(target).rstrip("/") or "/", None, f"{kind} {source or '(anonymous)'}"))
    return out


class Unknown(str):
    """Why the files at a path cannot be known (a sentence)."""


class ContainerFiles:
    """The files nginx sees inside its container: bind mounts over what the image holds."""

    def __init__(self, mount_list: list[Mount], image_files: dict[str, str], image_known: bool,
                 image_unknown: str | None = None) -> None:
        self.mounts = sorted(mount_list, key=lambda m: len(m.target), reverse=True)
        self.image_files = image_files  # container path -> host file
        # Whether the image's own files are all known (a pulled image: its defaults; a build whose
        # Dockerfile audit read): then a path in no mount and not in the image does not exist.
        self.image_known = image_known
        self.image_unknown = image_unknown
        # container path -> host file, over everything else: what a start renders, and the main file
        # audit.yaml names (nginx.path) where no mount puts it
        self.overlay: dict[str, str] = {}

    def _covering(self, path: str) -> Mount | None:
        for mount in self.mounts:
            if path == mount.target or path.startswith(mount.target.rstrip("/") + "/"):
                return mount
        return None

    @staticmethod
    def _through(mount: Mount, path: str) -> Path | Unknown:
        """The host path behind a container path on a mount, or why it cannot be known."""
        if mount.source is None:
            return Unknown(f"{path} is on {mount.what}, whose contents audit cannot read")
        if not mount.source.exists():
            return Unknown(f"{path} is bind-mounted from {mount.what}, which is not in the repository")
        return mount.source / posixpath.relpath(path, mount.target) if path != mount.target else mount.source

    def lookup(self, path: str) -> str | Unknown | None:
        """The host file behind a container path; None when it does not exist there."""
        path = posixpath.normpath(path)
        if path in self.overlay:
            return self.overlay[path]
        mount = self._covering(path)
        if mount is not None:
            host = self._through(mount, path)
            if isinstance(host, Unknown):
                return host
            return str(host) if host.is_file() else None
        if self.image_unknown and path.startswith(PREFIX + "/"):
            return Unknown(self.image_unknown)
        if path in self.image_files:
            return self.image_files[path]
        return None if self.image_known else Unknown(f"{path} is not in the repository: the image or its start "
                                                     "may create it")

    def listdir(self, directory: str) -> dict[str, str | Unknown] | Unknown:
        """Name -> host file of the files directly in a container directory."""
        directory = posixpath.normpath(directory)
        entries: dict[str, str | Unknown] = {}
        mount = self._covering(directory)
        if mount is not None:
            host = self._through(mount, directory)
            if isinstance(host, Unknown):
                return host
            if host.is_dir():
                entries = {p.name: str(p) for p in host.iterdir() if p.is_file()}
        else:
            if self.image_unknown and (directory == PREFIX or directory.startswith(PREFIX + "/")):
                return Unknown(self.image_unknown)
            entries = {posixpath.basename(p): h for p, h in self.image_files.items()
                       if posixpath.dirname(p) == directory}
            if not self.image_known and not entries:
                return Unknown(f"{directory} is not in the repository: the image or its start may fill it")
        for child in self.mounts:  # a file or directory mounted inside this one
            if posixpath.dirname(child.target) == directory and child is not mount:
                name = posixpath.basename(child.target)
                found = self.lookup(child.target)  # a file, why it is unknown, or None: nothing there
                if found is None:
                    entries.pop(name, None)
                else:
                    entries[name] = found
        for path, host in self.overlay.items():
            if posixpath.dirname(path) == directory:
                entries[posixpath.basename(path)] = host
        return entries

    def glob(self, pattern: str) -> list[str] | Unknown:
        directory, name = posixpath.split(posixpath.normpath(pattern))
        if glob.has_magic(directory):
            return Unknown(f"include {pattern} has a wildcard in its directory, which audit does not follow")
        entries = self.listdir(directory)
        if isinstance(entries, Unknown):
            return entries
        matched = sorted(n for n in entries if fnmatch.fnmatchcase(n, name))
        unknown = [entries[n] for n in matched if isinstance(entries[n], Unknown)]
        if unknown:
            return Unknown(unknown[0])
        return [posixpath.join(directory, n) for n in matched]

    def single_files(self) -> list[str]:
        """Host files bind-mounted one at a time."""
        return sorted(str(m.source) for m in self.mounts if m.source is not None and m.source.is_file())


# --- the image --------------------------------------------------------------------------------------------


_RM = re.compile(r"(?:^|[;&|]\s*)rm\s+(?:-[a-zA-Z]+\s+)*(?P<paths>[^;&|]+)")
_HARMLESS = re.compile(r"^\s*(chown|chmod|mkdir|touch|ls|cat|echo\s+[^>]*$)\b")


def _image_files(image: dockerfile.Image, defaults: dict[str, str]) -> tuple[dict[str, str], str | None]:
    """Container path -> host file of /etc/nginx after the build; and why it is unknown, if it is."""
    files = dict(defaults)
    events: list[tuple[int, str, Any]] = [(c.line, "copy", c) for c in image.copies]
    events += [(line, "run", text) for line, text in image.runs]
    unknown = None
    for line, kind, value in sorted(events, key=lambda e: e[0]):
        if kind == "copy":
            _copy(value, image.context, files)
            continue
        if PREFIX not in value:
            continue
        for command in re.split(r"&&|;|\|\|", value):
            if PREFIX not in command:
                continue
            removed = _RM.search(command)
            if removed:
                for path in removed["paths"].split():
                    for known in [p for p in files if fnmatch.fnmatchcase(p, path) or p.startswith(path + "/")]:
                        files.pop(known)
            elif not _HARMLESS.match(command) and unknown is None:
                unknown = (f"{image.dockerfile}:{line}: the build changes {PREFIX} ({command.strip()[:60]}): what "
                           "nginx loads is unknown")
    return files, unknown


def _copy(copy: dockerfile.Copy, context: Path, files: dict[str, str]) -> None:
    into_directory = copy.destination.endswith("/") or len(copy.sources) > 1 or copy.destination in (
        PREFIX, f"{PREFIX}/conf.d", f"{PREFIX}/templates")
    destination = copy.destination.rstrip("/") or "/"
    for source in copy.sources:
        for host in sorted(glob.glob(str(context / source))) or []:
            host_path = Path(host)
            if host_path.is_dir():
                for found in sorted(host_path.rglob("*")):
                    if found.is_file():
                        files[posixpath.join(destination, found.relative_to(host_path).as_posix())] = str(found)
            elif into_directory:
                files[posixpath.join(destination, host_path.name)] = str(host_path)
            else:
                files[destination] = str(host_path)


# --- start commands -----------------------------------------------------------------------------------


_ENVSUBST = re.compile(r"envsubst\s*(?:'(?P<single>[^']*)'|\"(?P<double>[^\"]*)\")?\s*<\s*(?P<src>\"[^\"]+\"|'[^']+'|\S+)"
                       r"\s*>\s*(?P<dest>\"[^\"]+\"|'[^']+'|\S+)")
# A command that writes files nginx may read, other than envsubst (which is rendered).
_WRITES = re.compile(r"\bsed\b|\btee\b|>\s*\S*(?:/etc/nginx|conf\.d|\.conf)|\b(?:cp|mv|ln)\b.*(?:/etc/nginx|conf\.d|\.conf)"
                     r"|\beval\b")
_SHELLS = {"sh", "bash", "ash", "dash", "zsh"}


@dataclass
class Start:
    """What the service's start does to nginx's config."""

    renders: list[tuple[str, str, set[str] | None, str]] = field(default_factory=list)  # src, dest, allow, where
    main: str | None = None  # `nginx -c FILE`
    unknown: str | None = None


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"" else text


def _positional(text: str, args: list[str]) -> str:
    return re.sub(r"\$\{?([1-9])\}?", lambda m: args[int(m[1]) - 1] if int(m[1]) <= len(args) else m[0], text)


def _shell_text(text: str, where: str, start: Start, files: ContainerFiles, depth: int, args: list[str]) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = _positional(stripped, args)
        place = f"{where}:{number}" if "\n" in text else where
        for match in _ENVSUBST.finditer(stripped):
            allow = match["single"] if match["single"] is not None else match["double"]
            names = set(variables.ENVSUBST_NAME.findall(allow)) if allow is not None else None
            start.renders.append((_unquote(match["src"]), _unquote(match["dest"]),
                                  {a or b for a, b in names} if names is not None else None, place))
        rest = _ENVSUBST.sub("", stripped)
        if _WRITES.search(rest) and start.unknown is None:
            start.unknown = f"{place} writes nginx's config at start ({stripped[:70]}): what nginx loads is unknown"
        for command in re.split(r"&&|;|\|\||&(?!&)", rest):
            _command(command.strip(), place, start, files, depth)


def _command(command: str, where: str, start: Start, files: ContainerFiles, depth: int) -> None:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if not words:
        return
    program = posixpath.basename(words[0])
    if program == "nginx":
        if "-c" in words[:-1]:
            start.main = words[words.index("-c") + 1]
        return
    if program in _SHELLS:
        if len(words) > 2 and words[1] == "-c":
            _shell_text(words[2], where, start, files, depth, words[3:])
            return
        words = words[1:]
    if words and (words[0].endswith(".sh") or words[0].startswith("/") and depth == 0) and depth < 3:
        script = words[0] if words[0].startswith("/") else posixpath.join(PREFIX, words[0])
        if script == DEFAULT_ENTRYPOINT and not _replaced_entrypoint(files):
            return  # the official start: its templates are rendered by read()
        host = files.lookup(script)
        if host is None or isinstance(host, Unknown):
            if start.unknown is None:
                start.unknown = f"start script {words[0]} is not in the repository: what nginx loads is unknown"
            return
        _shell_text(Path(host).read_text(encoding="utf-8", errors="replace"), host, start, files, depth + 1,
                    words[1:])


def start_of(spec: dict[str, Any], image: dockerfile.Image | None, files: ContainerFiles) -> tuple[Start, bool]:
    """What the service's entrypoint and command do to the config, and whether the image's own
    entrypoint (which renders /etc/nginx/templates) still runs."""
    start = Start()
    entrypoint = command_line(spec.get("entrypoint")) or (image.entrypoint if image else None)
    command = command_line(spec.get("command")) or (image.cmd if image else None)
    # A build that copies its own script over /docker-entrypoint.sh keeps the name and drops the official
    # start: that script runs instead (and is followed), the official templates are not rendered.
    replaced = _replaced_entrypoint(files)
    # The official entrypoint renders templates only for a command that starts nginx (its own test).
    program = command.split()[0].strip("\"'") if command and command.split() else "nginx"
    official = (entrypoint is None or entrypoint.split()[0] == DEFAULT_ENTRYPOINT) and not replaced \
        and posixpath.basename(program) in ("nginx", "nginx-debug")
    for text in (entrypoint or (DEFAULT_ENTRYPOINT if replaced else None), command):
        if text and (replaced or not text.startswith(DEFAULT_ENTRYPOINT)):
            _command_line(text, start, files)
    return start, official


def _replaced_entrypoint(files: ContainerFiles) -> bool:
    """Whether /docker-entrypoint.sh is a repository file (a build's COPY, a mount), not the image's own."""
    found = files.lookup(DEFAULT_ENTRYPOINT)
    return bool(found) and not isinstance(found, Unknown)


def _command_line(text: str, start: Start, files: ContainerFiles) -> None:
    try:
        words = shlex.split(text)
    except ValueError:
        words = []
    if len(words) > 2 and posixpath.basename(words[0]) in _SHELLS and words[1] == "-c":
        _shell_text(words[2].replace("\n", " "), "the service's command", start, files, 0, words[3:])
    else:
        _shell_text(text.replace("\n", " "), "the service's command", start, files, 0, [])


# --- rendering ----------------------------------------------------------------------------------------------




# --- the whole reading ------------------------------------------------------------------------------------------


@dataclass
class Found:
    """A service that is nginx (or an opaque proxy), with its image read once."""

    service: str
    image: str  # the image it runs, or a local build's FROM
    built: dockerfile.Image | None = None  # what its local build produces
    build_error: str | None = None  # why the build's Dockerfile could not be read


def find(model: Model, declared: str | None) -> list[Found]:
    """The nginx (or opaque proxy) services of a project, the declared one alone when declared."""
    out = []
    for name, spec in model.services.items():
        if declared is not None and name != declared:
            continue
        built, error = dockerfile.of_service(spec, model.project_dir)
        image = built.base if built else str(spec.get("image") or "")
        if declared is not None or repository(image) in NGINX_IMAGES | OPAQUE_IMAGES \
                or _renders_nginx(spec, built, model.project_dir):
            out.append(Found(name, image, built, error))
    return out


def _renders_nginx(spec: dict[str, Any], built: dockerfile.Image | None, project_dir: Path) -> bool:
    """Whether the service's start runs a repository script that renders nginx's config into /etc/nginx
    (an `nginx-entrypoint.sh` with envsubst): that service is an nginx, whatever its image is called."""
    if not (spec.get("entrypoint") or spec.get("command") or (built and (built.entrypoint or built.cmd))):
        return False
    image_files = _image_files(built, {})[0] if built else {}
    start, _ = start_of(spec, built, ContainerFiles(mounts(spec, project_dir), image_files, False))
    return any(posixpath.normpath(dest).startswith(PREFIX + "/") for _, dest, _, _ in start.renders)


def front(model: Model, found: list[Found]) -> Found | None:
    """With several, the one that publishes ports (the load balancer's way in), else the first."""
    publishing = [f for f in found if model.services[f.service].get("ports")]
    return (publishing or found or [None])[0]


def beside(every: list[Found], front: Found) -> list[Found]:
    """Of ``every`` nginx service of a project (``find(model, None)``), the ones besides the front one
    (opaque proxies are not read as nginx): not on the load balancer's way in, but each one's config is
    checked too."""
    return [f for f in every if f.service != front.service and repository(f.image) not in OPAQUE_IMAGES]


def read(model: Model, found: Found, main_file: Path | None, env: dict[str, str],
         redactor: Redactor) -> NginxConfig:
    """The config the service's nginx loads, read through its mounts, image and start."""
    service, image_name, built, build_error = found.service, found.image, found.built, found.build_error
    spec = model.services[service]
    where = model.lines.get(service, (model.project_dir, 0))
    if repository(image_name) in OPAQUE_IMAGES:
        return _unknown(service, f"service {service} runs {image_name}, which writes its config at run time: "
                        "paths through it are not judged", where)
    family = official(image_name)
    if family is None and repository(image_name) in NGINX_IMAGES:
        return _unknown(service, f"service {service} runs {image_name}, which is not an official nginx image: what "
                        "its start writes into /etc/nginx is unknown (a local build FROM an official one is read)",
                        where)
    defaults = _defaults(family) if family in NGINX_IMAGES else {}
    if build_error:
        image_files, image_unknown, known = {}, build_error, False
    elif built is not None:
        image_files, image_unknown = _image_files(built, defaults)
        known = family in NGINX_IMAGES
    else:
        image_files, image_unknown, known = defaults, None, family in NGINX_IMAGES
    with tempfile.TemporaryDirectory(prefix="audit-nginx-") as tmp:
        stored: dict[str, str] = {}  # host file -> how findings name it
        written: set[str] = set()  # the files a start renders
        for path, text in list(image_files.items()):
            if path in defaults and image_files[path] == defaults[path]:
                local = os.path.join(tmp, "image", path.lstrip("/"))
                os.makedirs(os.path.dirname(local), exist_ok=True)
                Path(local).write_text(text, encoding="utf-8")
                image_files[path] = local
                stored[local] = image_file(image_name, path)
        files = ContainerFiles(mounts(spec, model.project_dir), image_files, known, image_unknown)
        start, stock_start = start_of(spec, built, files)
        if start.unknown:
            return _unknown(service, start.unknown, where, files)
        rendered = [(src, dest, allow, place) for src, dest, allow, place in start.renders]
        if stock_start and family in ("nginx", "nginx-unprivileged"):
            rendered += _templates(files, env)
        for index, (src, dest, allow, place) in enumerate(rendered):
            host = files.lookup(src)
            if host is None or isinstance(host, Unknown):
                return _unknown(service, f"{place} renders {src}, which is not in the repository", where, files)
            local = os.path.join(tmp, "rendered", str(index), dest.lstrip("/"))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            Path(local).write_text(envsubst(Path(host).read_text(encoding="utf-8", errors="replace"), env, allow),
                                   encoding="utf-8")
            files.overlay[posixpath.normpath(dest)] = local
            stored[local] = host  # envsubst keeps lines: a finding's line is the source file's
            written.add(local)
        main = start.main or f"{PREFIX}/nginx.conf"
        if main_file is not None:
            main = _container_path(files, main_file) or main
            files.overlay.setdefault(main, str(main_file))

        def resolve(pattern: str) -> list[str] | str:
            if glob.has_magic(pattern):
                return files.glob(pattern)
            found = files.lookup(pattern)
            return found if isinstance(found, Unknown) else ([pattern] if found else [])

        def host_file(path: str) -> tuple[str, str]:
            host = files.lookup(path)
            assert isinstance(host, str) and not isinstance(host, Unknown)
            return host, stored.get(host, host)

        head = files.lookup(main)
        if head is None or isinstance(head, Unknown):
            why = head if isinstance(head, Unknown) else f"{main} does not exist in service {service}"
            return _unknown(service, f"nginx's main config: {why}", where, files)
        config = nginx.parse_virtual(main, resolve, host_file, redactor, PREFIX,
                                     rendered=written)
    config.service = service
    config.file_mounts = files.single_files()
    config.alone = family in NGINX_IMAGES
    return _scrubbed(config, env, redactor) if written else config


def _scrubbed(config: NginxConfig, env: dict[str, str], redactor: Redactor) -> NginxConfig:
    """A rendered config with the values of secret-named variables redacted wherever they landed (a
    `set`, a `return` text); addresses and ports, which paths need, come from other variables."""
    return msgspec.json.decode(redactor.rendered(msgspec.json.encode(config).decode(), env), type=NginxConfig)


def _container_path(files: ContainerFiles, host: Path) -> str | None:
    for mount in files.mounts:
        if mount.source is not None and mount.source == host.resolve():
            return mount.target
    for path, source in files.image_files.items():
        if Path(source) == host.resolve():
            return path
    return None


def _templates(files: ContainerFiles, env: dict[str, str]) -> list[tuple[str, str, set[str] | None, str]]:
    """The official image's 20-envsubst-on-templates.sh: every TEMPLATE_DIR/*SUFFIX rendered into
    OUTPUT_DIR with the variables the container defines (only those: `$host` survives)."""
    directory = env.get("NGINX_ENVSUBST_TEMPLATE_DIR", f"{PREFIX}/templates")
    suffix = env.get("NGINX_ENVSUBST_TEMPLATE_SUFFIX", ".template")
    output = env.get("NGINX_ENVSUBST_OUTPUT_DIR", f"{PREFIX}/conf.d")
    entries = files.listdir(directory)
    if isinstance(entries, Unknown):
        return []
    return [(posixpath.join(directory, name), posixpath.join(output, name[:-len(suffix)]), set(env),
             "the image's template rendering") for name in sorted(entries) if name.endswith(suffix)]


def _unknown(service: str, why: str, where: tuple[Path, int], files: ContainerFiles | None = None) -> NginxConfig:
    return NginxConfig(service=service, unreadable=[Refusal(message=str(why), file=str(where[0]), line=where[1])],
                       file_mounts=files.single_files() if files else [])
