"""AWS: load balancers, listeners, rules, target groups, target health, security groups, instances and
ECS services, read with boto3 — read-only by construction.

Every client refuses, before anything is sent, an operation whose name does not
start with Describe, List or Get. Calls are counted per operation, paginated
everywhere (moto pages load balancers at 50, AWS at 400), and run in a thread
pool per service: at most ``concurrency`` requests in flight per service. Each
read starts as soon as the ids it needs are known (``Reads``), not when a phase
of the collection ends.

Retries are ours, per request, with full jitter: throttling, 5xx and connection
errors are retried after a random wait that a ``Stop`` (Ctrl-C, or the end of
--timeout) cuts short. botocore's own backoff sleeps up to 20 s where nobody can
interrupt it, and its adaptive mode slows every request of a client after a few
throttles.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, as_completed, wait
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ReadTimeoutError

from auditor.model.aws_shapes import action_model, containers, forward_targets, sg_rules
from auditor.config import Aws
from auditor.errors import AuditError, CollectionStopped
from auditor.model.snapshot import (
    EcsLoadBalancer,
    EcsService,
    HealthCheck,
    Instance,
    Listener,
    ListenerRule,
    LoadBalancer,
    Redactor,
    Resources,
    SecurityGroup,
    SourceError,
    SourceStatus,
    Subnet,
    TargetGroup,
    TargetHealth,
    TaskDefinition,
    tags_match,
)

READ_ONLY = ("Describe", "List", "Get")
# Credentials for a read-only role are the one exception: AssumeRole changes nothing in the account.
CREDENTIALS = {("sts", "AssumeRole")}
DEFAULT_CONCURRENCY = 8
DEFAULT_READ_TIMEOUT = 30.0  # seconds for one response; a slower one is retried
# An endpoint that answers nothing for this long is taken as stalled: the collection ends, naming it,
# within two minutes of the last answer (a read in progress may add up to its timeout).
STALLED_AFTER = 90.0
SERVICES = ("elbv2", "ec2", "ecs", "sts")
MAX_ATTEMPTS = 10  # throttling and 5xx: the service is there and asks us to wait
CONNECTION_ATTEMPTS = 4  # a reset or a timeout is retried, a dead endpoint is not waited on for long
HUNG_ATTEMPTS = 2  # without --timeout, one call waits at most two read timeouts for a response
BACKOFF_BASE, BACKOFF_CAP = 0.2, 5.0  # seconds: full jitter over min(cap, base * 2**attempt)
THROTTLING = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
}
TRANSIENT_STATUS = {500, 502, 503, 504}
T = TypeVar("T")


class ReadOnlyViolation(AuditError):
    """The collector was asked to call an operation that could change the account."""


class CollectionError(AuditError):
    """AWS could not be read; the message names the operation (and the IAM action to grant)."""


class Stop:
    """Ends a collection early, from any thread: Ctrl-C, the end of --timeout, or an endpoint that has
    answered nothing for ``STALLED_AFTER`` seconds. Every request checks it before it is sent and while
    it waits to retry, so no thread outlives it by more than one request's connect or read timeout. It
    also knows what is awaited (the requests in flight), for the lines a nightly job's log shows."""

    def __init__(self, timeout: float | None = None, stalled_after: float | None = None) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stalled_after = STALLED_AFTER if stalled_after is None else stalled_after
        self.last_answer = time.monotonic()
        self.answers = 0
        self.stalled = False
        self.event = threading.Event()
        self.last_error = ""  # what the last failed attempt said, for the message at the deadline
        self.in_flight: dict[int, tuple[str, str, float]] = {}  # per thread: operation, endpoint, since

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def answered(self) -> None:
        self.last_answer = time.monotonic()
        self.answers += 1

    def check(self, endpoint: str | None = None) -> None:
        """Raise CollectionStopped once stopped; ``endpoint`` names where (default: the one awaited)."""
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            self.event.set()
        oldest = self.awaited()
        # Stalled: a request is in flight and nothing has answered since it or the last answer was sent.
        if oldest is not None and now - max(self.last_answer, oldest[2]) >= self.stalled_after:
            self.stalled = True
            self.event.set()
        if self.event.is_set():
            raise CollectionStopped(self.message(endpoint or (oldest[1] if oldest else "the AWS endpoint")))

    def message(self, endpoint: str) -> str:
        last = f" (last: {self.last_error})" if self.last_error else ""
        if self.stalled:
            awaited = self.awaited()
            what = f" {awaited[0]}" if awaited else ""
            return f"AWS at {endpoint} has not answered{what} in {self.stalled_after:g} s: is it up and reachable?"
        if self.timeout is not None and self.remaining() == 0:
            return f"collection from AWS at {endpoint} did not finish within --timeout {self.timeout:g} s{last}"
        return f"collection from AWS at {endpoint} was stopped{last}"

    def wait(self, seconds: float, endpoint: str) -> None:
        """Sleep before a retry; wake at once when stopped."""
        remaining = self.remaining()
        self.event.wait(seconds if remaining is None else min(seconds, remaining))
        self.check(endpoint)

    def sending(self, operation: str, endpoint: str) -> None:
        self.in_flight[threading.get_ident()] = (operation, endpoint, time.monotonic())

    def done(self) -> None:
        self.in_flight.pop(threading.get_ident(), None)

    def awaited(self) -> tuple[str, str, float] | None:
        """The request waited on longest: operation, endpoint, since when."""
        return min(list(self.in_flight.values()), key=lambda entry: entry[2], default=None)

    def waiting(self) -> str | None:
        """What is awaited, as a line for the log; None when no request is in flight."""
        requests = list(self.in_flight.values())
        oldest = self.awaited()
        if oldest is None:
            return None
        more = f" and {len(requests) - 1} more requests" if len(requests) > 1 else ""
        last = f"last answer {time.monotonic() - self.last_answer:.0f} s ago" if self.answers else "no answer yet"
        return f"waiting for AWS at {oldest[1]}: {oldest[0]}{more}, {time.monotonic() - oldest[2]:.0f} s ({last})"


def _retryable(response: Any, caught: Exception | None) -> bool:
    if caught is not None:
        return isinstance(caught, BotoCoreError) and not isinstance(caught, NoCredentialsError)
    if not response:
        return False
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return code in THROTTLING or getattr(http, "status_code", 0) in TRANSIENT_STATUS


class AccessDenied(CollectionError):
    pass


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in items or []}


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


class Reads:
    """The requests of one collection. Each service has its own pool of ``concurrency`` threads, so
    at most that many of its requests are in flight and an EC2 read never queues behind a hundred
    ELB reads. A read never waits for another; the collection's steps do (the caller, and the few
    chains started with ``step`` on threads of their own), each for just the reads it needs."""

    def __init__(self, stop: Stop, endpoint: str, concurrency: int) -> None:
        self.stop = stop
        self.endpoint = endpoint
        self.pools = {s: ThreadPoolExecutor(concurrency, thread_name_prefix=f"audit-{s}") for s in SERVICES}
        self.steps = ThreadPoolExecutor(4, thread_name_prefix="audit-step")

    def start(self, service: str, read: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        return self.pools[service].submit(read, *args, **kwargs)

    def step(self, chain: Callable[..., T], *args: Any) -> Future[T]:
        return self.steps.submit(chain, *args)

    def by_filter(self, collector: AwsCollector, service: str, operation: str, key: str, name: str,
                  values: list[str]) -> list[Future[list[dict[str, Any]]]]:
        # Filters, not id lists: an id that no longer exists is then simply absent, not an error.
        return [self.start(service, collector.paginate, service, operation, key, Filters=[{"Name": name, "Values": c}])
                for c in _chunks(values, 200)]

    def results(self, futures: list[Future[T]]) -> list[T]:
        """Their results, once all are in; the first failure, or a stop at the deadline, is raised."""
        done, pending = wait(futures, timeout=self.stop.remaining(), return_when=FIRST_EXCEPTION)
        if pending and not any(f.exception() for f in done):
            self._stopped()
        return [f.result() for f in futures]

    def result(self, future: Future[T]) -> T:
        return self.results([future])[0]

    def joined(self, futures: list[Future[list[T]]]) -> list[T]:
        return [item for result in self.results(futures) for item in result]

    def as_done(self, futures: list[Future[T]]) -> Iterator[T]:
        """Each result as soon as it is in."""
        try:
            for future in as_completed(futures, timeout=self.stop.remaining()):
                yield future.result()
        except FutureTimeout:
            self._stopped()

    def _stopped(self) -> NoReturn:
        self.stop.event.set()
        raise CollectionStopped(self.stop.message(self.endpoint))

    def close(self) -> None:
        # The reads first: queued ones are cancelled, so a step waiting on them ends too. Once
        # stopped, threads still waiting on the network are not waited for.
        for pool in [*self.pools.values(), self.steps]:
            pool.shutdown(wait=not self.stop.event.is_set(), cancel_futures=True)


class AwsCollector:
    def __init__(self, aws: Aws, region: str, concurrency: int = DEFAULT_CONCURRENCY,
                 redactor: Redactor | None = None, progress: Callable[[str], None] | None = None,
                 host_matches: list[dict[str, str]] | None = None, role_arn: str | None = None,
                 read_timeout: float = DEFAULT_READ_TIMEOUT, stop: Stop | None = None) -> None:
        self.aws = aws
        self.stop = stop or Stop()
        self.read_timeout = read_timeout
        self.region = region
        self.concurrency = concurrency
        self.redactor = redactor or Redactor(None)
        self.progress = progress or (lambda step: None)
        self.scope = aws.scope.tags if aws.scope else None
        self.host_matches = host_matches or []
        self.calls: Counter[str] = Counter()
        self.errors: list[SourceError] = []
        self.read_any = False  # whether any read succeeded
        self._lock = threading.Lock()
        self._session = self._make_session(role_arn or aws.role_arn)
        self._clients: dict[str, Any] = {}

    # --- clients --------------------------------------------------------------------------------

    def _make_session(self, role_arn: str | None) -> boto3.Session:
        """The profile's credentials, or a read-only role's (session name `audit`); a role that cannot
        be assumed raises the ClientError, for the caller to record against its slice."""
        base = boto3.Session(profile_name=self.aws.profile, region_name=self.region)
        if not role_arn:
            return base
        sts = self._guarded(base.client("sts", **self._client_args()))
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="audit")["Credentials"]
        return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                             aws_session_token=creds["SessionToken"], region_name=self.region)

    def _client_args(self) -> dict[str, Any]:
        # The retry decision is ours (see the module docstring): botocore's own handler may never retry.
        config = BotoConfig(region_name=self.region, retries={"mode": "standard", "total_max_attempts": 1},
                            max_pool_connections=self.concurrency, connect_timeout=min(5.0, self.read_timeout),
                            read_timeout=self.read_timeout)
        args: dict[str, Any] = {"config": config}
        if self.aws.endpoint_url:  # else boto3 honours AWS_ENDPOINT_URL itself
            args["endpoint_url"] = self.aws.endpoint_url
        return args

    def _guarded(self, client: Any) -> Any:
        service = client.meta.service_model.service_name

        endpoint = client.meta.endpoint_url

        def guard(model: Any, **_: Any) -> None:
            if not model.name.startswith(READ_ONLY) and (service, model.name) not in CREDENTIALS:
                raise ReadOnlyViolation(f"refusing {service}:{model.name}: audit only reads (Describe*, List*, Get*)")
            with self._lock:
                self.calls[f"{service}.{model.name}"] += 1
            self.stop.sending(f"{service}:{model.name}", endpoint)

        def before_send(**_: Any) -> None:
            self.stop.check(endpoint)

        def needs_retry(response: Any = None, attempts: int = 1, caught_exception: Exception | None = None,
                        **_: Any) -> float | None:
            if response is not None:
                self.stop.answered()
            if caught_exception is not None and not isinstance(caught_exception, CollectionStopped):
                self.stop.last_error = str(caught_exception)
            # A response that never came is asked for once more, unless --timeout's deadline bounds the wait.
            hung = isinstance(caught_exception, ReadTimeoutError) and self.stop.deadline is None
            limit = MAX_ATTEMPTS if caught_exception is None else HUNG_ATTEMPTS if hung else CONNECTION_ATTEMPTS
            if attempts >= limit or not _retryable(response, caught_exception):
                self.stop.check(endpoint)
                return None
            self.stop.wait(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempts)), endpoint)
            return 0  # waited already, interruptibly: botocore retries at once

        client.meta.events.register("before-call", guard)  # every operation of this client
        client.meta.events.register("after-call", lambda **_: self.stop.done())
        client.meta.events.register("after-call-error", lambda **_: self.stop.done())
        client.meta.events.register("before-send", before_send)
        client.meta.events.register_first("needs-retry", needs_retry)  # ahead of botocore's own
        return client

    @property
    def _endpoint(self) -> str:
        return self.aws.endpoint_url or self.client("elbv2").meta.endpoint_url

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._guarded(self._session.client(service, **self._client_args()))
            return self._clients[service]

    # --- calls ----------------------------------------------------------------------------------

    def _record(self, service: str, operation: str, exc: Exception) -> None:
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
        else:
            code, message = type(exc).__name__, str(exc)
        error = SourceError(source="aws", operation=f"{service}:{operation}", code=code,
                            message=self.redactor.text(message))
        with self._lock:
            self.errors.append(error)

    @contextmanager
    def _recording(self, service: str, operation: str) -> Iterator[None]:
        """A failed read is recorded (the collection becomes partial); missing credentials end it."""
        try:
            yield
        except NoCredentialsError as exc:
            raise CollectionError(f"no AWS credentials for region {self.region}: {exc}") from None
        except (ClientError, BotoCoreError) as exc:
            self._record(service, operation, exc)
        else:
            self.read_any = True

    def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """One call; a failure gives None."""
        method = getattr(self.client(service), _snake(operation))
        with self._recording(service, operation):
            return method(**kwargs)
        return None

    def paginate(self, service: str, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every page's items; a failure keeps the pages read before it."""
        paginator = self.client(service).get_paginator(_snake(operation))
        items: list[dict[str, Any]] = []
        with self._recording(service, operation):
            for page in paginator.paginate(**kwargs):
                items.extend(page.get(key, []))
        return items

    # --- the collection ---------------------------------------------------------------------------

    def collect(self) -> tuple[Resources, SourceStatus]:
        """Every read starts as soon as the ids it needs are known: a load balancer's rules when its
        listeners arrive, instances when the target health is in, while the other reads go on."""
        reads = Reads(self.stop, self._endpoint, self.concurrency)
        try:
            return self._collect(reads)
        finally:
            reads.close()

    def _collect(self, reads: Reads) -> tuple[Resources, SourceStatus]:
        self.progress("load balancers and target groups")
        # ECS depends on nothing ELB says until the end: its listing runs beside everything else.
        ecs_listing = reads.step(self._ecs_listing, reads)
        listed = [reads.start("elbv2", lambda: [lb for lb in self.paginate(
                      "elbv2", "DescribeLoadBalancers", "LoadBalancers") if lb.get("Type", "application") == "application"]),
                  reads.start("elbv2", self.paginate, "elbv2", "DescribeTargetGroups", "TargetGroups")]
        lbs_raw, tgs_raw = reads.results(listed)
        arns = [lb["LoadBalancerArn"] for lb in lbs_raw] + [tg["TargetGroupArn"] for tg in tgs_raw]
        tags: dict[str, dict[str, str]] = {}
        for chunk_tags in reads.results([reads.start("elbv2", self.paginate_tags, c) for c in _chunks(arns, 20)]):
            tags.update(chunk_tags)
        lbs = {lb["LoadBalancerArn"]: lb for lb in lbs_raw}
        tgs = {tg["TargetGroupArn"]: tg for tg in tgs_raw}
        selected_lbs, selected_tgs = self._scope(lbs, tgs, tags)
        self.progress(f"{len(selected_lbs)} load balancers and {len(selected_tgs)} target groups")

        # Target health first: instances and then security groups wait on it, the rest does not.
        health, tg_attrs = self._target_groups(reads, sorted(selected_tgs))
        hosts = [reads.step(self._instances, reads, dict(health), tgs, self.host_matches)]
        subnet_ids = sorted({z["SubnetId"] for a in selected_lbs for z in lbs[a].get("AvailabilityZones", [])
                             if z.get("SubnetId")})
        subnets = reads.by_filter(self, "ec2", "DescribeSubnets", "Subnets", "subnet-id", subnet_ids)
        lb_attrs = {a: reads.start("elbv2", self._attributes, "DescribeLoadBalancerAttributes", "LoadBalancerArn", a)
                    for a in sorted(selected_lbs)}
        listings = [reads.start("elbv2", self.paginate, "elbv2", "DescribeListeners", "Listeners", LoadBalancerArn=a)
                    for a in sorted(selected_lbs)]
        listeners_raw: list[dict[str, Any]] = []
        rule_reads = []
        for listeners in reads.as_done(listings):  # each listener's rules as soon as it is known
            listeners_raw += listeners
            rule_reads += [reads.start("elbv2", self.paginate, "elbv2", "DescribeRules", "Rules",
                                       ListenerArn=lst["ListenerArn"]) for lst in listeners]
        listeners_raw.sort(key=lambda lst: (lst["LoadBalancerArn"], lst["ListenerArn"]))
        rules_raw = sorted((r for rules in reads.results(rule_reads) for r in rules), key=lambda r: r["RuleArn"])
        # What the selected listeners forward to is collected, tagged or not.
        forwarded = {t.arn for lst in listeners_raw for a in lst.get("DefaultActions", []) for t in forward_targets(a)}
        forwarded |= {t.arn for r in rules_raw for a in r.get("Actions", []) for t in forward_targets(a)}
        extra = sorted(a for a in forwarded - selected_tgs if a in tgs)
        if extra:
            selected_tgs.update(extra)
            more, more_attrs = self._target_groups(reads, extra)
            hosts.append(reads.step(self._instances, reads, more, tgs, []))
            health.update(more)
            tg_attrs.update(more_attrs)

        self.progress("ECS services, instances and security groups")
        ecs = self._ecs_services(reads, reads.result(ecs_listing), selected_tgs)
        instances_raw = list({i["InstanceId"]: i for found in reads.results(hosts) for i in found}.values())
        sg_ids = sorted({g for a in selected_lbs for g in lbs[a].get("SecurityGroups", [])}
                        | {g["GroupId"] for i in instances_raw for g in i.get("SecurityGroups", [])}
                        | {g for s in ecs for g in s.security_groups})
        sgs_raw = reads.joined(reads.by_filter(self, "ec2", "DescribeSecurityGroups", "SecurityGroups", "group-id",
                                               sg_ids))
        referenced = sorted({p["GroupId"] for sg in sgs_raw for perm in sg.get("IpPermissions", []) + sg.get(
            "IpPermissionsEgress", []) for p in perm.get("UserIdGroupPairs", []) if p.get("GroupId")} - set(sg_ids))
        sgs_raw += reads.joined(reads.by_filter(self, "ec2", "DescribeSecurityGroups", "SecurityGroups", "group-id",
                                                referenced))
        subnet_cidrs = {s["SubnetId"]: s for s in reads.joined(subnets)}
        target_health = [h for a in sorted(selected_tgs) for h in reads.result(health[a])]

        resources = Resources(
            load_balancers=[self._lb_model(lbs[a], tags.get(a, {}), reads.result(lb_attrs[a]), subnet_cidrs)
                            for a in sorted(selected_lbs)],
            listeners=[self._listener_model(lst) for lst in listeners_raw],
            listener_rules=[self._rule_model(r) for r in rules_raw],
            target_groups=[self._tg_model(tgs[a], tags.get(a, {}), reads.result(tg_attrs[a]))
                           for a in sorted(selected_tgs)],
            target_health=target_health,
            security_groups=[self._sg_model(sg) for sg in sgs_raw],
            instances=[self._instance_model(i) for i in instances_raw],
            ecs_services=ecs,
        )
        # Nothing read at all (a dead endpoint, no network) is an error, not a partial collection.
        state = "ok" if not self.errors else "partial" if self.read_any else "error"
        status = SourceStatus(status=state, errors=list(self.errors),
                              api_calls=dict(sorted(self.calls.items())))
        return resources, status

    def paginate_tags(self, arns: list[str]) -> dict[str, dict[str, str]]:
        response = self.call("elbv2", "DescribeTags", ResourceArns=arns) or {}
        return {d["ResourceArn"]: _tags(d.get("Tags")) for d in response.get("TagDescriptions", [])}

    def _scope(self, lbs: dict[str, Any], tgs: dict[str, Any],
               tags: dict[str, dict[str, str]]) -> tuple[set[str], set[str]]:
        """Scope selects load balancers and target groups by tags; what they reference comes too."""
        if not self.scope:
            return set(lbs), set(tgs)

        def matches(arn: str) -> bool:
            return tags_match(tags.get(arn, {}), self.scope)

        selected_tgs = {a for a in tgs if matches(a)}
        selected_lbs = {a for a in lbs if matches(a)}
        selected_lbs |= {lb for a in selected_tgs for lb in tgs[a].get("LoadBalancerArns", []) if lb in lbs}
        return selected_lbs, selected_tgs

    def _target_groups(self, reads: Reads, arns: list[str]) -> tuple[dict[str, Future[list[TargetHealth]]],
                                                                       dict[str, Future[dict[str, str]]]]:
        """Each target group's health and its attributes, as separate reads (the health first)."""
        health = {a: reads.start("elbv2", self._target_health, a) for a in arns}
        attributes = {a: reads.start("elbv2", self._attributes, "DescribeTargetGroupAttributes", "TargetGroupArn", a)
                      for a in arns}
        return health, attributes

    def _attributes(self, operation: str, name: str, arn: str) -> dict[str, str]:
        attrs = self.call("elbv2", operation, **{name: arn}) or {}
        return {a["Key"]: a["Value"] for a in attrs.get("Attributes", [])}

    def _target_health(self, arn: str) -> list[TargetHealth]:
        health = self.call("elbv2", "DescribeTargetHealth", TargetGroupArn=arn) or {}
        return [
            TargetHealth(
                target_group_arn=arn, target_id=d["Target"]["Id"], port=d["Target"].get("Port"),
                availability_zone=d["Target"].get("AvailabilityZone"),
                state=d.get("TargetHealth", {}).get("State", "unknown"),
                reason=d.get("TargetHealth", {}).get("Reason"),
                description=d.get("TargetHealth", {}).get("Description"),
                account=_account(arn), region=self.region,
            )
            for d in health.get("TargetHealthDescriptions", [])
        ]

    def _instances(self, reads: Reads, health: dict[str, Future[list[TargetHealth]]], tgs: dict[str, Any],
                   host_matches: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The instances behind the target health, read once it is all in (one request per 200 ids),
        and those a host description matches (commands may run per instance on them)."""
        targets = [h for found in reads.results(list(health.values())) for h in found]
        ids = sorted({h.target_id for h in targets if h.target_id.startswith("i-")})
        ips = sorted({h.target_id for h in targets if not h.target_id.startswith("i-")
                      and tgs.get(h.target_group_arn, {}).get("TargetType") == "ip"})
        pages = [f for name, values in (("instance-id", ids), ("private-ip-address", ips))
                 for f in reads.by_filter(self, "ec2", "DescribeInstances", "Reservations", name, values)]
        matched = []
        for match in host_matches:
            filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in match.items()]
            filters.append({"Name": "instance-state-name", "Values": ["running"]})
            matched.append(reads.start("ec2", self.paginate, "ec2", "DescribeInstances", "Reservations",
                                       Filters=filters))
        found: dict[str, dict[str, Any]] = {}
        for reservation in reads.joined(pages) + reads.joined(matched):
            for instance in reservation.get("Instances", []):
                found.setdefault(instance["InstanceId"], dict(instance, OwnerId=reservation.get("OwnerId", "")))
        return list(found.values())

    def _ecs_listing(self, reads: Reads) -> list[dict[str, Any]]:
        """Every ECS service of the region, described; which of them the environment holds is known
        only when its target groups are."""
        clusters = reads.result(reads.start("ecs", self.paginate, "ecs", "ListClusters", "clusterArns"))
        listed = [(c, reads.start("ecs", self.paginate, "ecs", "ListServices", "serviceArns", cluster=c))
                  for c in clusters]
        described = [reads.start("ecs", lambda c=c, chunk=chunk: (self.call(
                         "ecs", "DescribeServices", cluster=c, services=chunk) or {}).get("services", []))
                     for c, arns in ((c, reads.result(f)) for c, f in listed) for chunk in _chunks(arns, 10)]
        return reads.joined(described)

    def _ecs_services(self, reads: Reads, described: list[dict[str, Any]], selected_tgs: set[str]) -> list[EcsService]:
        services = [s for s in described
                    if any(lb.get("targetGroupArn") in selected_tgs for lb in s.get("loadBalancers", []))]
        families = sorted({s["taskDefinition"] for s in services if s.get("taskDefinition")})
        definitions = dict(zip(families, reads.results([reads.start("ecs", lambda f=f: (self.call(
            "ecs", "DescribeTaskDefinition", taskDefinition=f) or {}).get("taskDefinition")) for f in families]),
            strict=True))
        return [self._ecs_model(s, definitions.get(s.get("taskDefinition", ""))) for s in services]

    # --- AWS shapes → snapshot models ---------------------------------------------------------------

    def _lb_model(self, lb: dict[str, Any], tags: dict[str, str], attrs: dict[str, str],
                  subnets: dict[str, Any]) -> LoadBalancer:
        return LoadBalancer(
            arn=lb["LoadBalancerArn"], name=lb["LoadBalancerName"], type=lb.get("Type", "application"),
            scheme=lb.get("Scheme", "internet-facing"), dns_name=lb.get("DNSName", ""), vpc_id=lb.get("VpcId", ""),
            security_groups=lb.get("SecurityGroups", []),
            subnets=[Subnet(id=z["SubnetId"], cidr=subnets.get(z["SubnetId"], {}).get("CidrBlock"),
                            availability_zone=z.get("ZoneName")) for z in lb.get("AvailabilityZones", [])
                     if z.get("SubnetId")],
            tags=tags, attributes=attrs, account=_account(lb["LoadBalancerArn"]), region=self.region,
        )

    def _listener_model(self, lst: dict[str, Any]) -> Listener:
        return Listener(
            arn=lst["ListenerArn"], load_balancer_arn=lst["LoadBalancerArn"], port=lst.get("Port", 0),
            protocol=lst.get("Protocol", "HTTP"),
            # moto gives HTTP listeners an SslPolicy; AWS does not. Only TLS listeners have one.
            ssl_policy=lst.get("SslPolicy") if lst.get("Protocol") in ("HTTPS", "TLS") else None,
            certificates=[c["CertificateArn"] for c in lst.get("Certificates", []) if c.get("CertificateArn")],
            default_actions=[action_model(a) for a in lst.get("DefaultActions", [])],
            account=_account(lst["ListenerArn"]), region=self.region,
        )

    def _rule_model(self, rule: dict[str, Any]) -> ListenerRule:
        listener_arn = rule["RuleArn"].replace(":listener-rule/", ":listener/").rsplit("/", 1)[0]
        return ListenerRule(
            arn=rule["RuleArn"], listener_arn=listener_arn, priority=str(rule.get("Priority", "default")),
            is_default=bool(rule.get("IsDefault")), conditions=rule.get("Conditions", []),
            actions=[action_model(a) for a in rule.get("Actions", [])],
            account=_account(rule["RuleArn"]), region=self.region,
        )

    def _tg_model(self, tg: dict[str, Any], tags: dict[str, str], attrs: dict[str, str]) -> TargetGroup:
        matcher = tg.get("Matcher", {})
        return TargetGroup(
            arn=tg["TargetGroupArn"], name=tg["TargetGroupName"], port=tg.get("Port"),
            protocol=tg.get("Protocol", "HTTP"), protocol_version=tg.get("ProtocolVersion", "HTTP1"),
            target_type=tg.get("TargetType", "instance"), vpc_id=tg.get("VpcId", ""),
            load_balancer_arns=sorted(set(tg.get("LoadBalancerArns", []))),  # moto may repeat them
            health_check=HealthCheck(
                enabled=tg.get("HealthCheckEnabled", True), protocol=tg.get("HealthCheckProtocol", "HTTP"),
                port=str(tg.get("HealthCheckPort", "traffic-port")), path=tg.get("HealthCheckPath", "/"),
                interval_seconds=tg.get("HealthCheckIntervalSeconds", 30),
                timeout_seconds=tg.get("HealthCheckTimeoutSeconds", 5),
                healthy_threshold=tg.get("HealthyThresholdCount", 5),
                unhealthy_threshold=tg.get("UnhealthyThresholdCount", 2),
                matcher=matcher.get("HttpCode") or matcher.get("GrpcCode") or "200",
            ),
            attributes=attrs, tags=tags, account=_account(tg["TargetGroupArn"]), region=self.region,
        )

    def _sg_model(self, sg: dict[str, Any]) -> SecurityGroup:
        return SecurityGroup(
            id=sg["GroupId"], name=sg.get("GroupName", ""), vpc_id=sg.get("VpcId", ""),
            description=sg.get("Description", ""), tags=_tags(sg.get("Tags")),
            ingress=[r for p in sg.get("IpPermissions", []) for r in sg_rules(p)],
            egress=[r for p in sg.get("IpPermissionsEgress", []) for r in sg_rules(p)],
            account=sg.get("OwnerId", ""), region=self.region,
        )

    def _instance_model(self, instance: dict[str, Any]) -> Instance:
        return Instance(
            id=instance["InstanceId"], private_ip=instance.get("PrivateIpAddress"),
            state=instance.get("State", {}).get("Name", "unknown"), instance_type=instance.get("InstanceType"),
            subnet_id=instance.get("SubnetId"), vpc_id=instance.get("VpcId"),
            security_groups=[g["GroupId"] for g in instance.get("SecurityGroups", [])],
            tags=_tags(instance.get("Tags")), account=instance.get("OwnerId", ""), region=self.region,
        )

    def _ecs_model(self, service: dict[str, Any], definition: dict[str, Any] | None) -> EcsService:
        network = service.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
        task = None
        if definition:
            task = TaskDefinition(
                family=definition.get("family", ""), revision=definition.get("revision", 1),
                network_mode=definition.get("networkMode", "bridge"),
                containers=containers(definition.get("containerDefinitions", []), self.redactor),
            )
        return EcsService(
            arn=service["serviceArn"], cluster=service.get("clusterArn", ""), name=service.get("serviceName", ""),
            launch_type=service.get("launchType"), desired_count=service.get("desiredCount", 0),
            security_groups=network.get("securityGroups", []),
            load_balancers=[EcsLoadBalancer(target_group_arn=lb["targetGroupArn"], container_name=lb["containerName"],
                                            container_port=lb["containerPort"])
                            for lb in service.get("loadBalancers", []) if lb.get("targetGroupArn")],
            task_definition=task, account=_account(service["serviceArn"]), region=self.region,
        )


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
