"""`audit init [DIR]`: a first audit.yaml, drafted from what the repository holds and, with ``--aws``,
what the account says (read-only), commented for a person to finish. It never overwrites one.

From the repository: compose files, merged as `docker compose` would read them (``compose.yaml`` with
its ``.override``; a variant such as ``docker-compose.prod.yml`` alone, or over the base when it is
only an overlay); each becomes an environment with one host. In each project: slots from service
names (``app-blue``/``app-green``), nginx as a compose service (found by its image, as collection
finds it), else an ``nginx.conf`` beside the compose file that no service mounts (nginx on the host).
From AWS: the environment-like tag of each load balancer (``Environment``, ``Env``, ``Stage``) names
an environment and its scope; the role-like tag of the instances behind its target groups (``Role``,
``Service``, ``App``, ``Component``) the host's match.

Every environment of the draft is collected offline before it is written: one that cannot be read
is written commented out with the reason, so that the draft runs as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditor.errors import AuditError

ENV_WORDS = {"dev", "development", "test", "testing", "qa", "stage", "staging", "preprod", "uat", "prod",
             "production", "live", "demo", "sandbox"}
ENV_TAGS = ("Environment", "environment", "Env", "env", "Stage", "stage")
ROLE_TAGS = ("Role", "role", "Service", "service", "App", "app", "Component", "component")
# Directory names that say nothing about the environment: the one above names it.
GENERIC_DIRS = {"docker", "docker-compose", "docker_compose", "compose", "deploy", "deployment", "deployments",
                "contrib", "infra", "ops", ".docker"}
SKIP_DIRS = {".git", "node_modules", "vendor", ".venv", "venv", "dist", "build", "__pycache__", ".terraform",
             ".audit", "site-packages"}
COMPOSE_FILE = re.compile(r"^(?:docker-)?compose(?P<variant>[.-][\w.-]+?)?\.ya?ml$")
SLOT_SERVICE = re.compile(r"^(?P<base>.+?)[-_](?P<slot>blue|green)$")
MAX_DEPTH = 6


@dataclass
class HostDraft:
    name: str
    compose: list[Path]
    match: tuple[str, str] | None = None  # the tag key and value of its instances, when AWS said
    slots: dict[str, str] = field(default_factory=dict)
    nginx_service: str | None = None
    nginx_path: Path | None = None


@dataclass
class EnvDraft:
    name: str
    hosts: list[HostDraft] = field(default_factory=list)
    scope: tuple[str, str] | None = None
    broken: str | None = None  # why it cannot be collected as drafted


@dataclass
class Draft:
    environments: list[EnvDraft]
    undecided: list[str]
    region: str | None = None


# --- the repository ---------------------------------------------------------------------------------


def compose_files(root: Path) -> dict[Path, list[Path]]:
    """Compose files by directory, below ``root``, skipping dependencies and build output."""
    found: dict[Path, list[Path]] = {}
    for directory, names, files in _walk(root):
        names[:] = sorted(n for n in names if n not in SKIP_DIRS and not n.startswith("."))
        for name in sorted(files):
            if COMPOSE_FILE.match(name):
                found.setdefault(directory, []).append(directory / name)
    return found


def _walk(root: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    for directory, names, files in os.walk(root):
        here = Path(directory)
        if len(here.relative_to(root).parts) >= MAX_DEPTH:
            names[:] = []
        yield here, names, files


def _variant(path: Path) -> str:
    match = COMPOSE_FILE.match(path.name)
    return (match.group("variant") or "").lstrip(".-") if match else ""


def _env_name(directory: Path, root: Path) -> str:
    """A directory's environment name: an environment word among its parts, else its nearest part that
    is not a generic name, else ``default``."""
    parts = [p.lower() for p in directory.relative_to(root).parts]
    for part in reversed(parts):
        if part in ENV_WORDS:
            return part
    return next((p for p in reversed(parts) if p not in GENERIC_DIRS), "default")


def projects(root: Path, undecided: list[str]) -> list[tuple[str, list[Path]]]:
    """(environment name, compose files merged in that order), one per project the repository holds."""
    from auditor.collect.host import docker

    out: list[tuple[str, list[Path]]] = []
    found = compose_files(root)
    fragments = _included(found)  # only make sense inside the `include:` of the file that names them
    found = {d: kept for d, files in found.items() if (kept := [f for f in files if f.resolve() not in fragments])}
    with_base = {d for d, files in found.items() if any(not _variant(f) for f in files)}
    for directory, files in sorted(found.items()):
        bases = [f for f in files if not _variant(f)]
        if not bases and any(d in directory.parents for d in with_base):
            names = ", ".join(_rel(f, root) for f in files)
            undecided.append(f"{names}: overlays of a compose file above them? add the ones a host uses to its "
                             "docker.compose list")
            continue
        overrides = [f for f in files if _variant(f) == "override"]
        base = bases[:1] + [o for o in overrides if bases]
        if bases:
            out.append((_env_name(directory, root), base))
        for variant in (f for f in files if _variant(f) not in ("", "override")):
            name = _variant(variant).lower().removeprefix("override.")
            # docker-compose.override.dev.yml is an override by its name: over the base, never alone
            alone = [] if _variant(variant).startswith("override.") else [[variant]]
            for candidate in [*alone, base + [variant]]:
                if len(candidate) == 1 or base:
                    try:
                        docker.load_project(candidate)
                    except AuditError:
                        continue
                    out.append((name, candidate))
                    break
            else:
                undecided.append(f"{_rel(variant, root)}: read neither alone nor over "
                                 f"{_rel(base[0], root) if base else 'a base compose file'}; left out")
    names: dict[str, int] = {}
    for name, _ in out:
        names[name] = names.get(name, 0) + 1
    return [(f"{files[0].parent.name.lower()}-{name}" if names[name] > 1 and files[0].parent.name.lower() != name
             else name, files) for name, files in out]


def _read(found: dict[Path, list[Path]]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each compose file found, as plain YAML (one that does not parse is left to the drafting to say)."""
    from auditor.collect.host import compose

    for files in found.values():
        for path in files:
            try:
                data, _, _ = compose.load_yaml(path)
            except AuditError:
                continue
            if isinstance(data, dict):
                yield path, data


def _included(found: dict[Path, list[Path]]) -> set[Path]:
    """The compose files another one names in its top-level `include`."""
    out: set[Path] = set()
    for path, data in _read(found):
        entries = data.get("include")
        for entry in entries if isinstance(entries, list) else []:
            named = entry.get("path") if isinstance(entry, dict) else entry
            for relative in named if isinstance(named, list) else [named]:
                if isinstance(relative, str) and "$" not in relative:
                    out.add((path.parent / relative).resolve())
    return out


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def host_for(name: str, files: list[Path], root: Path, undecided: list[str]) -> HostDraft:
    from auditor.collect.host import docker, nginx_service

    host = HostDraft(name="web", compose=files)
    try:
        model = docker.load_project(files)
    except AuditError as exc:
        undecided.append(f"{name}: {exc}")
        return host
    bases: dict[str, dict[str, str]] = {}
    for service in model.services:
        match = SLOT_SERVICE.match(service)
        if match:
            bases.setdefault(match.group("base"), {})[match.group("slot")] = service
    pairs = [slots for slots in bases.values() if set(slots) == {"blue", "green"}]
    if len(pairs) == 1:
        host.slots = dict(sorted(pairs[0].items()))
    elif len(pairs) > 1:
        undecided.append(f"{name}: several blue/green pairs ({', '.join(sorted(bases))}): declare docker.slots")
    proxies = nginx_service.find(model, None)
    found = [f for f in proxies if nginx_service.repository(f.image) not in nginx_service.OPAQUE_IMAGES]
    front = nginx_service.front(model, found)
    opaque = [f for f in proxies if f not in found]
    for proxy in opaque:
        undecided.append(f"{name}: service {proxy.service} runs {proxy.image}, a proxy audit does not read as nginx: "
                         "paths through it are not judged")
    if front is not None:
        host.nginx_service = front.service
        others = [f.service for f in found if f is not front]
        if others:
            undecided.append(f"{name}: nginx services {', '.join([front.service, *others])}: {front.service} fronts "
                             f"(it publishes ports) and the paths go through it; each one's config is checked")
        return host
    if opaque:
        return host
    mounted = _mounted(root)  # a conf.d snippet some compose nginx mounts is not a host nginx's main file
    configs = sorted(p for p in files[0].parent.rglob("nginx.conf")
                     if len(p.relative_to(files[0].parent).parts) <= 3 and p.resolve() not in mounted)
    if len(configs) == 1:
        host.nginx_path = configs[0]
    elif len(configs) > 1:
        undecided.append(f"{name}: several nginx.conf files ({', '.join(_rel(c, root) for c in configs)}): "
                         "set the host's nginx.path to the one it runs")
    else:
        undecided.append(f"{name}: no nginx found (none in compose, no nginx.conf beside it): the load balancer "
                         "reaches the containers directly, or give nginx.path / nginx.command")
    return host


def _mounted(root: Path) -> set[Path]:
    """Every file a compose file under ``root`` bind-mounts into a container."""
    from auditor.collect.host import nginx_service

    out: set[Path] = set()
    for path, data in _read(compose_files(root)):
        services = data.get("services")
        for spec in services.values() if isinstance(services, dict) else []:
            if isinstance(spec, dict):
                out |= {m.source for m in nginx_service.mounts(spec, path.parent) if m.source is not None}
    return out


# --- the account ------------------------------------------------------------------------------------


@dataclass
class AwsEnvironment:
    tag: tuple[str, str]
    roles: list[tuple[str, str]]


def aws_environments(region: str) -> dict[str, AwsEnvironment]:
    """The environments the account's load balancers name by tag, with the roles of their instances.
    Read-only: the collector's own guarded client."""
    from auditor.collect.aws.api import DEFAULT_READ_TIMEOUT, Api, Stop
    from auditor.config import Aws
    from auditor.model.snapshot import Redactor

    collector = Api(Aws(region=region), region, 4, Redactor(None), None, DEFAULT_READ_TIMEOUT, Stop())
    lbs = collector.paginate("elbv2", "DescribeLoadBalancers", "LoadBalancers")
    arns = [lb["LoadBalancerArn"] for lb in lbs if lb.get("Type", "application") == "application"]
    tags: dict[str, dict[str, str]] = {}
    for start in range(0, len(arns), 20):
        tags.update(collector.elb_tags(arns[start:start + 20]))
    found: dict[str, AwsEnvironment] = {}
    for arn in arns:
        key = next((k for k in ENV_TAGS if k in tags.get(arn, {})), None)
        if key is None:
            continue
        value = tags[arn][key]
        env = found.setdefault(value.lower(), AwsEnvironment((key, value), []))
        groups = collector.paginate("elbv2", "DescribeTargetGroups", "TargetGroups", LoadBalancerArn=arn)
        ids = sorted({d["Target"]["Id"] for g in groups for d in (collector.call(
            "elbv2", "DescribeTargetHealth", TargetGroupArn=g["TargetGroupArn"]) or {}).get(
            "TargetHealthDescriptions", []) if d["Target"]["Id"].startswith("i-")})
        if not ids:
            continue
        reservations = collector.paginate("ec2", "DescribeInstances", "Reservations",
                                          Filters=[{"Name": "instance-id", "Values": ids}])
        for instance in (i for r in reservations for i in r.get("Instances", [])):
            instance_tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            role = next(((k, instance_tags[k]) for k in ROLE_TAGS if k in instance_tags), None)
            if role and role not in env.roles:
                env.roles.append(role)
    if collector.errors:
        error = collector.errors[0]
        raise AuditError(f"init --aws: {error.operation}: {error.code}: {error.message}")
    return found


# --- the draft --------------------------------------------------------------------------------------


def draft(root: Path, aws_region: str | None = None) -> Draft:
    undecided: list[str] = []
    environments = [EnvDraft(name, [host_for(name, files, root, undecided)]) for name, files in projects(root, undecided)]
    if not environments:
        undecided.append(f"no compose file below {root}: hosts are left for you to describe")
    if aws_region is None:
        return Draft(environments, undecided)
    by_name = {e.name: e for e in environments}
    for name, found in sorted(aws_environments(aws_region).items()):
        env = by_name.get(name)
        if env is None:
            env = by_name[name] = EnvDraft(name)
            environments.append(env)
            undecided.append(f"{name}: load balancers tagged {found.tag[0]}={found.tag[1]}, but no compose "
                             "files for it in the repository: describe its hosts")
        env.scope = found.tag
        if len(env.hosts) == 1 and len(found.roles) == 1:
            env.hosts[0].match = found.roles[0]
            env.hosts[0].name = found.roles[0][1]
        elif found.roles:
            roles = ", ".join(f"{k}={v}" for k, v in found.roles)
            undecided.append(f"{name}: instances behind its target groups have the roles {roles}: match each "
                             "host to one")
    for env in environments:
        if env.scope is None:
            undecided.append(f"{env.name}: no load balancer tagged with it: add aws (region, scope) to collect AWS")
    return Draft(environments, undecided, aws_region)


def render(plan: Draft, out_dir: Path) -> str:
    def path(p: Path) -> str:
        return os.path.relpath(p, out_dir)

    lines = ["# audit.yaml drafted by `audit init`: read it, then finish what the comments ask. Environment names",
             "# are guesses (directory names, compose variants, else `default`): rename them. Reference: README.",
             "version: 1", "environments:"]
    for env in plan.environments:
        body = []
        if env.scope and plan.region:
            body.append(f"    aws: {{region: {plan.region}, scope: {{tags: {{{env.scope[0]}: {_q(env.scope[1])}}}}}}}")
        else:
            body.append(f"    # aws: {{region: REGION, scope: {{tags: {{Environment: {env.name}}}}}}}   # to collect AWS")
        body.append("    hosts:" if env.hosts else "    hosts: []   # describe the hosts behind its load balancers")
        for host in env.hosts:
            key, value = host.match or ("Role", host.name)
            note = "" if host.match else "   # the tags of the EC2 instances this describes"
            body += [f"      - name: {host.name}", f"        match: {{tags: {{{key}: {_q(value)}}}}}{note}"]
            if host.nginx_service:
                body.append(f"        nginx: {{service: {host.nginx_service}}}   # found by its image")
            elif host.nginx_path:
                body.append(f"        nginx: {{path: {path(host.nginx_path)}}}   # nginx on the host")
            body += ["        docker:", f"          compose: [{', '.join(path(p) for p in host.compose)}]"]
            if host.slots:
                slots = ", ".join(f"{slot}: {{service: {service}}}" for slot, service in host.slots.items())
                body.append(f"          slots: {{{slots}}}")
                body.append("          # live: blue                 # the slot live now, if nginx does not say")
            body.append("        # app: {health_path: /health}   # what the app serves, for P103")
        if env.broken:
            lines.append(f"  # {env.name}: left out, it cannot be read as drafted: {env.broken}")
            lines += ["  # " + line[2:] for line in [f"  {env.name}:", *body]]
        else:
            lines += [f"  {env.name}:", *body]
    if all(env.broken for env in plan.environments):
        lines[lines.index("environments:")] = "environments: {}   # none could be drafted: see the comments"
    return "\n".join(lines) + "\n"


def _q(value: str) -> str:
    return value if re.fullmatch(r"[\w./-]+", value) and not value.isdigit() else yaml.safe_dump(value).strip()


def verify(plan: Draft, out_dir: Path) -> None:
    """Collect every drafted environment offline; one that fails is marked broken with the reason."""
    from auditor import collect, config

    for env in plan.environments:
        try:
            cfg = config.parse(yaml.safe_load(render(Draft([env], [], plan.region), out_dir)), "draft", out_dir)
            collect.collect(cfg, env.name, collect.CollectOptions(offline=True))
        except AuditError as exc:
            env.broken = str(exc)
            plan.undecided.append(f"{env.name}: left out, it cannot be read as drafted: {exc}")


def write(root: Path, out: Path, aws_region: str | None) -> Draft:
    if out.exists():
        raise AuditError(f"{out} exists: audit init never overwrites it (move it away, or give -o PATH)")
    plan = draft(root, aws_region)
    if not plan.environments:
        # An audit.yaml with no environment is one its own loader refuses: write none.
        where = " or in the account's load balancer tags" if aws_region else ""
        raise AuditError(f"{root}: nothing to draft: no compose file below it{where}; "
                         f"nothing was written")
    verify(plan, out.parent)
    from auditor.model.snapshot import write_atomic

    write_atomic(out, render(plan, out.parent))
    return plan
