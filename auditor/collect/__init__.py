"""Collection: the only code that talks to the outside. AWS, then each host's nginx and Docker,
into one Snapshot per environment; every source records its status, errors and API calls."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from auditor.collect import commands, docker, nginx
from auditor.collect.aws import DEFAULT_CONCURRENCY, AwsCollector, CollectionError
from auditor.config import Config
from auditor.config import Host as HostConfig
from auditor.errors import AuditError, read_text
from auditor.snapshot import (
    Container,
    DockerFacts,
    Host,
    Instance,
    Redactor,
    Resources,
    Snapshot,
    SourceError,
    SourceStatus,
)

__all__ = ["DEFAULT_CONCURRENCY", "CollectOptions", "collect", "iam_action"]

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


def iam_action(operation: str) -> str:
    """`elbv2:DescribeTargetHealth` → `elasticloadbalancing:DescribeTargetHealth`."""
    service, _, name = operation.partition(":")
    return f"{IAM_PREFIX.get(service, service)}:{name}"


def _regions(config_aws, env: str) -> list[str]:
    regions = config_aws.regions or ([config_aws.region] if config_aws.region else [])
    if not regions:
        default = boto3.Session(profile_name=config_aws.profile).region_name
        if not default:
            raise CollectionError(f"environments.{env}.aws: give region (or regions); no default region is set")
        regions = [default]
    return regions


def collect_aws(config: Config, env: str, options: CollectOptions) -> tuple[Resources, SourceStatus]:
    aws = config.environments[env].aws
    if aws is None:
        return Resources(), SourceStatus()
    if aws.accounts:
        raise CollectionError(f"environments.{env}.aws.accounts: several accounts are not supported in this "
                              "version; collect each account as its own environment")
    # Instances a per-instance command runs on are collected too, within the scope's tags.
    scope = aws.scope.tags if aws.scope else {}
    matches = [{**scope, **h.match.tags} for h in config.environments[env].hosts if _per_instance(h)]
    deadline = None if options.timeout is None else time.monotonic() + options.timeout
    merged = Resources()
    status = SourceStatus()
    with ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="audit-aws") as pool:
        for region in _regions(aws, env):
            collector = AwsCollector(aws, region, options.concurrency, options.redactor,
                                     lambda step, r=region: options.progress(f"{env}: aws {r}: {step}"),
                                     host_matches=matches)
            resources, region_status = collector.collect(pool, deadline)
            for name in Resources.model_fields:
                getattr(merged, name).extend(getattr(resources, name))
            status.errors += region_status.errors
            for op, count in region_status.api_calls.items():
                status.api_calls[op] = status.api_calls.get(op, 0) + count
    status.status = "partial" if status.errors else "ok"
    return merged, status


def _instances_for(host: HostConfig, instances: list[Instance]) -> list[Instance]:
    return sorted((i for i in instances if all(i.tags.get(k) == v for k, v in host.match.tags.items())),
                  key=lambda i: i.id)


def _read_nginx(host: HostConfig, facts: commands.HostFacts, options: CollectOptions):
    spec = host.nginx
    if spec.path is not None:
        return nginx.parse_file(spec.path, options.redactor)
    argv = commands.expand(spec.command, facts)
    output = commands.run(argv, f"host {host.name}: nginx.command", options.redactor, _command_timeout(options))
    return nginx.parse_dump(output, f"host {host.name}: nginx.command", options.redactor)


def _read_docker(host: HostConfig, facts: commands.HostFacts, options: CollectOptions) -> list[Container]:
    spec = host.docker
    if spec.compose:
        return [c for path in spec.compose for c in docker.parse_compose(path, options.redactor)]
    if spec.inspect is not None:
        text = read_text(spec.inspect, "docker inspect output", docker.DockerError)
        return docker.parse_inspect(text, str(spec.inspect), options.redactor)
    argv = commands.expand(spec.command, facts)
    what = f"host {host.name}: docker.command"
    return docker.parse_inspect(commands.run(argv, what, options.redactor, _command_timeout(options)), what,
                                options.redactor)


def _command_timeout(options: CollectOptions) -> float:
    return min(commands.DEFAULT_TIMEOUT, options.timeout) if options.timeout else commands.DEFAULT_TIMEOUT


def _per_instance(host: HostConfig) -> bool:
    """A host whose commands name the instance is collected once per matched instance."""
    return any(commands.per_instance(spec.command) for spec in (host.nginx, host.docker) if spec and spec.command)


def collect_host(host: HostConfig, instance: Instance | None, options: CollectOptions) -> tuple[Host, SourceStatus]:
    """One host description, for one instance when its commands name the instance."""
    facts = commands.HostFacts(instance.id if instance else "", (instance.private_ip or "") if instance else "")
    source = f"host:{host.name}" + (f":{instance.id}" if instance else "")
    result = Host(name=host.name, instance_id=instance.id if instance else None, match=host.match.tags, app=host.app)
    status = SourceStatus()
    for layer, spec, read in (("nginx", host.nginx, _read_nginx), ("docker", host.docker, _read_docker)):
        if spec is None:
            continue
        command = getattr(spec, "command", None)
        if command is not None and not options.offline and not options.allow_commands:
            raise CollectionError(f"host {host.name}: {layer}.command runs a command; "
                                  "commands run only with --allow-commands")
        if command is not None and (options.offline or (instance is None and commands.per_instance(command))):
            why = ("--offline never runs commands" if options.offline
                   else f"no running instance matches {host.match.tags} to run it on")
            result.uncollected[layer] = why
            status.errors.append(SourceError(source=source, operation=layer, code="NotRun", message=why))
            continue
        try:
            value = read(host, facts, options)
        except AuditError as exc:
            result.uncollected[layer] = str(exc)
            status.errors.append(SourceError(source=source, operation=layer, code=type(exc).__name__,
                                             message=options.redactor.text(str(exc))))
            continue
        if layer == "nginx":
            result.nginx = value
        else:
            spec_docker = host.docker
            result.docker = DockerFacts(containers=value, slots={s: v.service for s, v in spec_docker.slots.items()},
                                        live=spec_docker.live, switch=spec_docker.switch)
    status.status = "error" if status.errors else "ok"
    return result, status


def collect(config: Config, env: str, options: CollectOptions) -> Snapshot:
    """Collect one environment. Raises CollectionError when the collection is partial and
    ``options.allow_partial`` is off; the caller then keeps any previous snapshot."""
    environment = config.environment(env)
    sources: dict[str, SourceStatus] = {}
    resources = Resources()
    if not options.offline and environment.aws is not None:
        resources, sources["aws"] = collect_aws(config, env, options)
    for host in environment.hosts:
        options.progress(f"{env}: host {host.name}")
        matched = _instances_for(host, resources.instances) if _per_instance(host) else []
        targets: list[Instance | None] = list(matched) or [None]
        for instance in targets:
            facts, status = collect_host(host, instance, options)
            resources.hosts.append(_relative_files(facts, config.base_dir))
            sources[f"host:{host.name}" + (f":{instance.id}" if instance else "")] = status
    snapshot = Snapshot(environment=env, sources=sources, resources=resources,
                        collected_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat())
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

    return Host.model_validate(relative(host.model_dump()))


def _refuse_partial(snapshot: Snapshot) -> None:
    for name, status in sorted(snapshot.sources.items()):
        errors = [e for e in status.errors if e.code != "NotRun"]  # --offline asked for that
        if not errors:
            continue
        error = errors[0]
        if error.code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            raise CollectionError(f"{snapshot.environment}: {error.operation} was denied: grant "
                                  f"{iam_action(error.operation)} (or pass --allow-partial)")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        what = f"{error.operation}: " if error.operation and error.operation not in error.message else ""
        raise CollectionError(f"{snapshot.environment}: {name} is partial: {what}{error.code}: "
                              f"{error.message}{more} (pass --allow-partial to keep what was read)")
