"""Collection: the only code that talks to the outside. AWS, then each host's nginx and Docker,
into one Snapshot per environment; every source records its status, errors and API calls."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import boto3
import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from auditor.collect.aws.api import DEFAULT_READ_TIMEOUT, Api, CollectionError, Stop
from auditor.collect.aws.collector import DEFAULT_CONCURRENCY, AwsCollector
from auditor.collect.host import commands, compose, docker, nginx, nginx_service
from auditor.config import Aws, Config, Host as HostConfig
from auditor.errors import AuditError, read_text
from auditor.model.typed import typed
from auditor.model.snapshot import (
    App,
    COLLECTIONS,
    Container,
    DockerFacts,
    Host,
    Instance,
    NginxConfig,
    Redactor,
    Resources,
    Snapshot,
    SourceError,
    SourceStatus,
    Switch,
    tags_match,
    validated,
)

__all__ = ["DEFAULT_CONCURRENCY", "CollectOptions", "collect", "iam_action"]

# Account × region slices collected at once; each has its own pool of `concurrency` requests.
MAX_SLICES_IN_FLIGHT = 4
HEARTBEAT = 10.0  # seconds between the lines that say what a collection waits for
T = TypeVar("T")

# IAM actions are named by the service's IAM prefix, not boto3's client name.
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "ec2": "ec2", "ecs": "ecs", "sts": "sts"}


@dataclass
class CollectOptions:
    allow_commands: bool = False
    allow_partial: bool = False
    offline: bool = False
    timeout: float | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    redactor: Redactor = field(default_factory=Redactor.from_environment)
    progress: Callable[[str], None] = lambda step: None
    heartbeat: Callable[[str], None] = lambda line: None  # what is awaited, every HEARTBEAT seconds


def iam_action(operation: str) -> str:
    """`elbv2:DescribeTargetHealth` → `elasticloadbalancing:DescribeTargetHealth`."""
    service, _, name = operation.partition(":")
    return f"{IAM_PREFIX.get(service, service)}:{name}"


@dataclass(frozen=True)
class Slice:
    """One account and region of an environment: the unit of concurrency and of sharding."""

    account: str  # the role's account id, or "default": the credentials' own account
    region: str
    role_arn: str | None

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


def _regions(aws: Aws, env: str) -> list[str]:
    regions = aws.regions or ([aws.region] if aws.region else [])
    if not regions:
        default = boto3.Session(profile_name=aws.profile).region_name
        if not default:
            raise CollectionError(f"environments.{env}.aws: give region (or regions); no default region is set")
        regions = [default]
    return regions


def slices(aws: Aws, env: str) -> list[Slice]:
    """Every account × region the environment spans, in audit.yaml's order."""
    if not aws.accounts:
        return [Slice("default", region, aws.role_arn) for region in _regions(aws, env)]
    return [Slice(account.role_arn.split(":")[4] or "default", region, account.role_arn)
            for account in aws.accounts for region in (account.regions or _regions(aws, env))]


def _shard(aws: Aws, env: str, every: list[Slice], shard: str, options: CollectOptions) -> list[Slice]:
    """The slice ``--shard`` names: ``ACCOUNT/REGION`` as audit.yaml's slices are named, where the
    credentials' own account may be given by its id (the one the console shows) as well as ``default``."""
    chosen = [s for s in every if str(s) == shard]
    account, _, region = shard.partition("/")
    defaults = [s for s in every if s.account == "default" and s.region == region]
    if not chosen and defaults and account.isdigit() and len(account) == 12:
        api = Api(aws, region, 1, options.redactor, None, DEFAULT_READ_TIMEOUT, Stop(options.timeout))
        caller = (api.call("sts", "GetCallerIdentity") or {}).get("Account")
        if caller == account:
            return defaults
        why = f"the credentials for {env} are account {caller}" if caller else "the caller's account cannot be read"
        raise CollectionError(f"--shard {shard}: {why}, not {account}")
    if not chosen:
        raise CollectionError(f"--shard {shard}: environment {env} has the slices {', '.join(map(str, every))}")
    return chosen


def _collect_slice(piece: Slice, aws: Aws, env: str, options: CollectOptions, matches: list[dict[str, str]],
                   stop: Stop) -> tuple[Resources, SourceStatus]:
    source = f"aws:{piece}"
    try:
        # Under --timeout a hung response must leave time for its retry: wait at most a third of it.
        read_timeout = min(DEFAULT_READ_TIMEOUT, options.timeout / 3) if options.timeout else DEFAULT_READ_TIMEOUT
        collector = AwsCollector(aws, piece.region, options.concurrency, options.redactor,
                                 lambda step: options.progress(f"{env}: {source}: {step}"), matches, piece.role_arn,
                                 max(read_timeout, 0.1), stop)
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
        message = f"cannot assume {piece.role_arn}: {exc}"
        return Resources(), SourceStatus(status="error", errors=[SourceError(
            source=source, operation="sts:AssumeRole", code=code, message=options.redactor.text(message))])
    return collector.collect()


def collect_aws(config: Config, env: str, options: CollectOptions,
                shard: str | None = None) -> tuple[Resources, dict[str, SourceStatus], list[str]]:
    """The AWS side of an environment, every slice concurrently (or the one ``shard`` names):
    resources, a source status per slice, and the names of all the environment's slices."""
    aws = config.environments[env].aws
    every = slices(aws, env)
    chosen = every if shard is None else _shard(aws, env, every, shard, options)
    # Instances a per-instance command runs on are collected too, within the scope's tags.
    scope = aws.scope.tags if aws.scope else {}
    matches = [{**scope, **h.match.tags} for h in config.environments[env].hosts if _per_instance(h)]
    stop = Stop(options.timeout)
    merged = Resources()
    sources = {}
    outer = ThreadPoolExecutor(max_workers=min(len(chosen), MAX_SLICES_IN_FLIGHT), thread_name_prefix="audit-slice")
    try:
        futures = [outer.submit(_collect_slice, piece, aws, env, options, matches, stop) for piece in chosen]
        for piece, future in zip(chosen, futures, strict=True):
            resources, status = _awaited(future, stop, env, options)
            for name in COLLECTIONS:
                getattr(merged, name).extend(getattr(resources, name))
            sources[f"aws:{piece}"] = status
    except BaseException:  # Ctrl-C included: every thread stops at its next request or retry
        stop.event.set()
        raise
    finally:
        outer.shutdown(wait=not stop.event.is_set(), cancel_futures=True)
    return merged, sources, [str(s) for s in every]


def _awaited(future: Future[T], stop: Stop, env: str, options: CollectOptions) -> T:
    """A slice's result. While it is awaited, a line every ``HEARTBEAT`` seconds says what for (a
    nightly job's log shows where it is), and a stalled endpoint or the end of --timeout ends the wait
    at once, even while a thread still waits on the network."""
    last_line = time.monotonic()
    while True:
        try:
            return future.result(timeout=1.0)
        except FutureTimeout:
            stop.check()
        if time.monotonic() - last_line >= HEARTBEAT:
            last_line = time.monotonic()
            line = stop.waiting()
            if line:
                options.heartbeat(f"{env}: {line}")


def _instances_for(host: HostConfig, instances: list[Instance]) -> list[Instance]:
    return sorted((i for i in instances if tags_match(i.tags, host.match.tags)),
                  key=lambda i: i.id)


def _read_nginx(host: HostConfig, facts: commands.HostFacts, options: CollectOptions,
                project: compose.Model | None = None) -> tuple[NginxConfig | None, list[NginxConfig]]:
    """The host's nginx, and the other nginx services of its compose project (checked, not on the path)."""
    spec = host.nginx
    if spec is None or spec.service is not None:
        return _compose_nginx(host, project, options)
    if spec.path is not None:
        return nginx.parse_file(spec.path, options.redactor, spec.prefix), []
    argv = commands.expand(spec.command, facts)
    output = commands.run(argv, f"host {host.name}: nginx.command", options.redactor, _command_timeout(options))
    return nginx.parse_dump(output, f"host {host.name}: nginx.command", options.redactor), []


def _compose_nginx(host: HostConfig, project: compose.Model | None, options: CollectOptions,
                   ) -> tuple[NginxConfig | None, list[NginxConfig]]:
    """nginx as a service of the host's compose project: the declared one, else the one its image names
    that publishes ports; None when the project runs no nginx (the load balancer then reaches the
    containers directly). Every other nginx service of the project is read too."""
    declared = host.nginx.service if host.nginx else None
    if project is None:
        if declared is not None and not (host.docker and host.docker.compose):
            raise nginx.NginxError(f"host {host.name}: nginx.service {declared} needs docker.compose")
        if declared is not None:
            raise nginx.NginxError(f"host {host.name}: nginx.service {declared}: the compose project could not be "
                                   "read (see the docker error)")
        return None, []
    found = nginx_service.find(project, declared)
    if declared is not None and not found:
        raise nginx.NginxError(f"host {host.name}: nginx.service {declared} is no service of the compose project "
                               f"(it has {', '.join(sorted(project.services))})")
    chosen = nginx_service.front(project, found)
    if chosen is None:
        return None, []
    main = host.nginx.path if host.nginx else None
    front = _read_service_nginx(host, project, chosen, main, options)
    every = found if declared is None else nginx_service.find(project, None)  # declared: found holds it alone
    return front, [_read_service_nginx(host, project, other, None, options)
                   for other in nginx_service.beside(every, chosen)]


def _read_service_nginx(host: HostConfig, project: compose.Model, found: nginx_service.Found, main: Path | None,
                        options: CollectOptions) -> NginxConfig:
    env = compose.service_environment(project.services[found.service], project.project_dir)
    try:
        return nginx_service.read(project, found, main, env, options.redactor)
    except (OSError, UnicodeError) as exc:  # a file of the repository that cannot be read as text
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        raise nginx.NginxError(f"host {host.name}: nginx service {found.service}: {where}"
                               f"{getattr(exc, 'strerror', None) or exc}") from None


def _read_docker(host: HostConfig, facts: commands.HostFacts, options: CollectOptions,
                 ) -> tuple[list[Container], compose.Model | None]:
    spec = host.docker
    if spec.compose:
        # Several files are one project, merged as `docker compose -f a -f b` merges them.
        project = docker.load_project(spec.compose, spec.environment, spec.profiles)
        return docker.containers(project, options.redactor), project
    if spec.inspect is not None:
        text = read_text(spec.inspect, "docker inspect output", docker.DockerError)
        return docker.parse_inspect(text, str(spec.inspect), options.redactor), None
    argv = commands.expand(spec.command, facts)
    what = f"host {host.name}: docker.command"
    return docker.parse_inspect(commands.run(argv, what, options.redactor, _command_timeout(options)), what,
                                options.redactor), None


def _command_timeout(options: CollectOptions) -> float:
    return min(commands.DEFAULT_TIMEOUT, options.timeout) if options.timeout else commands.DEFAULT_TIMEOUT


def _per_instance(host: HostConfig) -> bool:
    """A host whose commands name the instance is collected once per matched instance."""
    return any(commands.per_instance(spec.command) for spec in (host.nginx, host.docker) if spec and spec.command)


def collect_host(host: HostConfig, instance: Instance | None, options: CollectOptions) -> tuple[Host, SourceStatus]:
    """One host description, for one instance when its commands name the instance."""
    facts = commands.HostFacts(instance.id if instance else "", (instance.private_ip or "") if instance else "")
    source = f"host:{host.name}" + (f":{instance.id}" if instance else "")
    result = Host(name=host.name, instance_id=instance.id if instance else None, match=host.match.tags,
                  app=typed(msgspec.to_builtins(host.app), App) if host.app else None)
    status = SourceStatus()
    project: compose.Model | None = None
    for layer in ("docker", "nginx"):  # docker first: a compose project may hold the nginx
        spec = getattr(host, layer)
        if layer == "nginx" and spec is None and host.docker and host.docker.compose and project is None \
                and "docker" in result.uncollected:
            # The project that may run nginx was not read: nginx is unknown, not absent (--allow-partial).
            result.uncollected["nginx"] = f"the compose project that may run it was not read: " \
                                          f"{result.uncollected['docker']}"
            continue
        if spec is None and not (layer == "nginx" and project is not None):
            continue
        command = getattr(spec, "command", None)
        if command is not None and not options.offline and not options.allow_commands:
            raise CollectionError(f"host {host.name}: {layer}.command runs a command; "
                                  "commands run only with --allow-commands")
        if command is not None and options.offline:
            result.not_requested[layer] = "--offline never runs commands"
            continue
        if command is not None and instance is None and commands.per_instance(command):
            why = f"no running instance matches {host.match.tags} to run it on"
            result.uncollected[layer] = why
            status.errors.append(SourceError(source=source, operation=layer, code="NotRun", message=why))
            continue
        try:
            if layer == "nginx":
                result.nginx, result.nginx_beside = _read_nginx(host, facts, options, project)
                continue
            found, project = _read_docker(host, facts, options)
        except AuditError as exc:
            message = options.redactor.text(str(exc))  # the same scrubbed text in both places
            result.uncollected[layer] = message
            status.errors.append(SourceError(source=source, operation=layer, code=type(exc).__name__,
                                             message=message))
            continue
        spec_docker = host.docker
        result.docker = DockerFacts(containers=found, networks=docker.networks(project) if project else {},
                                    slots={s: v.service for s, v in spec_docker.slots.items()},
                                    listen_ports={n: s.port for n, s in spec_docker.services.items()},
                                    live=spec_docker.live,
                                    switch=typed(msgspec.to_builtins(spec_docker.switch), Switch)
                                    if spec_docker.switch else None)
    if status.errors:
        status.status = "error"
    elif result.not_requested and not (result.nginx or result.docker):
        status.status, status.reason = "not_requested", "--offline never runs commands"
    return result, status


def collect(config: Config, env: str, options: CollectOptions, shard: str | None = None) -> Snapshot:
    """Collect one environment (or the one ACCOUNT/REGION slice ``shard`` names). Raises
    CollectionError when the collection is partial and ``options.allow_partial`` is off; the caller
    then keeps any previous snapshot."""
    environment = config.environment(env)
    sources: dict[str, SourceStatus] = {}
    resources = Resources()
    collected: list[str] = []
    expected: list[str] = []
    if not options.offline and environment.aws is not None:
        resources, aws_sources, expected = collect_aws(config, env, options, shard)
        sources.update(aws_sources)
        collected = [name.removeprefix("aws:") for name in aws_sources]
    elif shard:
        raise CollectionError(f"--shard {shard}: environment {env} collects no AWS slices here")
    else:
        # Recorded, so that the rules reading AWS skip instead of passing on an empty estate.
        why = "--offline" if options.offline else f"environment {env} has no aws in audit.yaml"
        sources["aws"] = SourceStatus(status="not_requested", reason=why)
    for host in environment.hosts:
        options.progress(f"{env}: host {host.name}")
        matched = _instances_for(host, resources.instances) if _per_instance(host) else []
        targets: list[Instance | None] = list(matched) or [None]
        for instance in targets:
            facts, status = collect_host(host, instance, options)
            resources.hosts.append(_relative_files(facts, config.base_dir))
            sources[f"host:{host.name}" + (f":{instance.id}" if instance else "")] = status
    snapshot = validated(Snapshot(environment=env, sources=sources, resources=resources, slices=collected,
                                  expected_slices=expected,
                                  collected_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()))
    if not options.allow_partial:
        _refuse_partial(snapshot)
    return snapshot


def _relative_files(host: Host, base: Path) -> Host:
    """File names relative to audit.yaml's directory, so snapshots do not depend on the checkout's place."""
    prefix = str(base.resolve()) + os.sep

    def relative(node):
        if isinstance(node, dict):
            return {k: (v.removeprefix(prefix) if k == "file" and isinstance(v, str) else relative(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [v.removeprefix(prefix) if isinstance(v, str) else relative(v) for v in node]
        return node

    return typed(relative(msgspec.to_builtins(host)), Host)


def _refuse_partial(snapshot: Snapshot) -> None:
    for name, status in sorted(snapshot.sources.items()):
        errors = [e for e in status.errors if e.code != "NotRun"]  # --offline asked for that
        if not errors:
            continue
        error = errors[0]
        if error.code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            raise CollectionError(f"{snapshot.environment}: {name}: {error.operation} was denied: grant "
                                  f"{iam_action(error.operation)} (or pass --allow-partial)")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        what = f"{error.operation}: " if error.operation and error.operation not in error.message else ""
        if status.status == "error" and name.startswith("aws:"):
            raise CollectionError(f"{snapshot.environment}: {name} could not be read: {what}{error.code}: "
                                  f"{error.message}{more}")
        raise CollectionError(f"{snapshot.environment}: {name} is partial: {what}{error.code}: "
                              f"{error.message}{more} (pass --allow-partial to keep what was read)")
