"""AWS, collected: load balancers, listeners, rules, target groups, target health, security groups,
instances and ECS services of one account and region. Reads run in a thread pool per service (at most
``concurrency`` in flight per service), and each starts as soon as the ids it needs are known
(``Reads``), not when a phase of the collection ends. How one read is made: auditor.collect.aws.api."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, as_completed, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NoReturn, TypeVar

from auditor.collect.aws.api import DEFAULT_READ_TIMEOUT, Api, Stop
from auditor.config import Aws
from auditor.errors import CollectionStopped
from auditor.model import aws_shapes
from auditor.model import scope
from auditor.model.snapshot import (
    EcsService,
    Redactor,
    Resources,
    SourceStatus,
    SecurityGroup,
    TargetHealth,
)

DEFAULT_CONCURRENCY = 8
SERVICES = ("elbv2", "ec2", "ecs", "sts")
T = TypeVar("T")


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


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
        return [self.start(service, collector.api.paginate, service, operation, key, Filters=[{"Name": name, "Values": c}])
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
        self.api = Api(aws, region, concurrency, self.redactor, role_arn, read_timeout, self.stop)

    # --- the collection ---------------------------------------------------------------------------

    def collect(self) -> tuple[Resources, SourceStatus]:
        """Every read starts as soon as the ids it needs are known: a load balancer's rules when its
        listeners arrive, instances when the target health is in, while the other reads go on."""
        reads = Reads(self.stop, self.api.endpoint, self.concurrency)
        try:
            return self._collect(reads)
        finally:
            reads.close()

    def _collect(self, reads: Reads) -> tuple[Resources, SourceStatus]:
        self.progress("load balancers and target groups")
        # ECS depends on nothing ELB says until the end: its listing runs beside everything else.
        ecs_listing = reads.step(self._ecs_listing, reads)
        listed = [reads.start("elbv2", lambda: [lb for lb in self.api.paginate(
                      "elbv2", "DescribeLoadBalancers", "LoadBalancers") if lb.get("Type", "application") == "application"]),
                  reads.start("elbv2", self.api.paginate, "elbv2", "DescribeTargetGroups", "TargetGroups")]
        lbs_raw, tgs_raw = reads.results(listed)
        arns = [lb["LoadBalancerArn"] for lb in lbs_raw] + [tg["TargetGroupArn"] for tg in tgs_raw]
        tags: dict[str, dict[str, str]] = {}
        for chunk_tags in reads.results([reads.start("elbv2", self.api.elb_tags, c) for c in _chunks(arns, 20)]):
            tags.update(chunk_tags)
        lbs = {lb["LoadBalancerArn"]: lb for lb in lbs_raw}
        tgs = {tg["TargetGroupArn"]: tg for tg in tgs_raw}
        selected_lbs, selected_tgs = self._scope(lbs, tgs, tags)
        lbs_n, tgs_n = len(selected_lbs), len(selected_tgs)
        self.progress(f"{lbs_n} load balancer{'s' if lbs_n != 1 else ''} and {tgs_n} target group"
                      f"{'s' if tgs_n != 1 else ''}")

        # Target health first: instances and then security groups wait on it, the rest does not.
        health, tg_attrs = self._target_groups(reads, sorted(selected_tgs))
        hosts = [reads.step(self._instances, reads, dict(health), tgs, self.host_matches)]
        subnet_ids = sorted({z["SubnetId"] for a in selected_lbs for z in lbs[a].get("AvailabilityZones", [])
                             if z.get("SubnetId")})
        subnets = reads.by_filter(self, "ec2", "DescribeSubnets", "Subnets", "subnet-id", subnet_ids)
        lb_attrs = {a: reads.start("elbv2", self._attributes, "DescribeLoadBalancerAttributes", "LoadBalancerArn", a)
                    for a in sorted(selected_lbs)}
        listings = [reads.start("elbv2", self.api.paginate, "elbv2", "DescribeListeners", "Listeners", LoadBalancerArn=a)
                    for a in sorted(selected_lbs)]
        listeners_raw: list[dict[str, Any]] = []
        rule_reads = []
        for listeners in reads.as_done(listings):  # each listener's rules as soon as it is known
            listeners_raw += listeners
            rule_reads += [reads.start("elbv2", self.api.paginate, "elbv2", "DescribeRules", "Rules",
                                       ListenerArn=lst["ListenerArn"]) for lst in listeners]
        listeners_raw.sort(key=lambda lst: (lst["LoadBalancerArn"], lst["ListenerArn"]))
        rules_raw = sorted((r for rules in reads.results(rule_reads) for r in rules), key=lambda r: r["RuleArn"])
        listeners = [aws_shapes.listener(lst, self.region) for lst in listeners_raw]
        rules = [aws_shapes.listener_rule(r, self.region) for r in rules_raw]
        self._more_groups(reads, scope.forwarded(listeners, rules), tgs, selected_tgs, health, tg_attrs, hosts)

        self.progress("ECS services, instances and security groups")
        ecs = self._ecs_services(reads, reads.result(ecs_listing), selected_tgs)
        self._more_groups(reads, scope.registered(ecs), tgs, selected_tgs, health, tg_attrs, hosts)
        instances = [aws_shapes.instance(i, self.region) for i in
                     {i["InstanceId"]: i for found in reads.results(hosts) for i in found}.values()]
        subnet_cidrs = {s["SubnetId"]: s for s in reads.joined(subnets)}
        balancers = [aws_shapes.load_balancer(lbs[a], tags.get(a, {}), reads.result(lb_attrs[a]), subnet_cidrs,
                                              self.region) for a in sorted(selected_lbs)]
        groups = self._security_groups(reads, sorted(scope.used_groups(balancers, instances, ecs)))
        groups += self._security_groups(reads, sorted(scope.peers(groups) - {g.id for g in groups}))
        resources = Resources(
            load_balancers=balancers, listeners=listeners, listener_rules=rules,
            target_groups=[aws_shapes.target_group(tgs[a], tags.get(a, {}), reads.result(tg_attrs[a]), self.region)
                           for a in sorted(selected_tgs)],
            target_health=[h for a in sorted(selected_tgs) for h in reads.result(health[a])],
            security_groups=groups, instances=instances, ecs_services=ecs,
        )
        # Nothing read at all (a dead endpoint, no network) is an error, not a partial collection.
        state = "ok" if not self.api.errors else "partial" if self.api.read_any else "error"
        status = SourceStatus(status=state, errors=list(self.api.errors),
                              api_calls=dict(sorted(self.api.calls.items())))
        return resources, status

    def _scope(self, lbs: dict[str, Any], tgs: dict[str, Any],
               tags: dict[str, dict[str, str]]) -> tuple[set[str], set[str]]:
        """The load balancers and target groups the scope selects by their tags (model/scope.py), and the
        load balancers a selected group is attached to."""
        selected_tgs = {a for a in tgs if scope.selected(tags.get(a, {}), self.scope)}
        selected_lbs = {a for a in lbs if scope.selected(tags.get(a, {}), self.scope)}
        selected_lbs |= {lb for a in selected_tgs for lb in tgs[a].get("LoadBalancerArns", []) if lb in lbs}
        return selected_lbs, selected_tgs

    def _more_groups(self, reads: Reads, wanted: set[str], tgs: dict[str, Any], selected_tgs: set[str],
                     health: dict[str, Future[list[TargetHealth]]], tg_attrs: dict[str, Future[dict[str, str]]],
                     hosts: list[Future[list[dict[str, Any]]]]) -> None:
        """Target groups the environment reaches without the scope's tags (forwarded to, registered in):
        read too, with their health and the instances behind it."""
        extra = sorted(a for a in wanted - selected_tgs if a in tgs)
        if extra:
            selected_tgs.update(extra)
            more, more_attrs = self._target_groups(reads, extra)
            hosts.append(reads.step(self._instances, reads, more, tgs, []))
            health.update(more)
            tg_attrs.update(more_attrs)

    def _security_groups(self, reads: Reads, ids: list[str]) -> list[SecurityGroup]:
        found = reads.joined(reads.by_filter(self, "ec2", "DescribeSecurityGroups", "SecurityGroups", "group-id", ids))
        return [aws_shapes.security_group(sg, self.region) for sg in found]

    def _target_groups(self, reads: Reads, arns: list[str]) -> tuple[dict[str, Future[list[TargetHealth]]],
                                                                       dict[str, Future[dict[str, str]]]]:
        """Each target group's health and its attributes, as separate reads (the health first)."""
        health = {a: reads.start("elbv2", self._target_health, a) for a in arns}
        attributes = {a: reads.start("elbv2", self._attributes, "DescribeTargetGroupAttributes", "TargetGroupArn", a)
                      for a in arns}
        return health, attributes

    def _attributes(self, operation: str, name: str, arn: str) -> dict[str, str]:
        attrs = self.api.call("elbv2", operation, **{name: arn}) or {}
        return {a["Key"]: a["Value"] for a in attrs.get("Attributes", [])}

    def _target_health(self, arn: str) -> list[TargetHealth]:
        health = self.api.call("elbv2", "DescribeTargetHealth", TargetGroupArn=arn) or {}
        return [
            TargetHealth(
                target_group_arn=arn, target_id=d["Target"]["Id"], port=d["Target"].get("Port"),
                availability_zone=d["Target"].get("AvailabilityZone"),
                state=d.get("TargetHealth", {}).get("State", "unknown"),
                reason=d.get("TargetHealth", {}).get("Reason"),
                description=d.get("TargetHealth", {}).get("Description"),
                account=aws_shapes.account_of(arn), region=self.region,
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
            matched.append(reads.start("ec2", self.api.paginate, "ec2", "DescribeInstances", "Reservations",
                                       Filters=filters))
        found: dict[str, dict[str, Any]] = {}
        for reservation in reads.joined(pages) + reads.joined(matched):
            for instance in reservation.get("Instances", []):
                found.setdefault(instance["InstanceId"], dict(instance, OwnerId=reservation.get("OwnerId", "")))
        return list(found.values())

    def _ecs_listing(self, reads: Reads) -> list[dict[str, Any]]:
        """Every ECS service of the region, described; which of them the environment holds is known
        only when its target groups are."""
        clusters = reads.result(reads.start("ecs", self.api.paginate, "ecs", "ListClusters", "clusterArns"))
        listed = [(c, reads.start("ecs", self.api.paginate, "ecs", "ListServices", "serviceArns", cluster=c))
                  for c in clusters]
        described = [reads.start("ecs", lambda c=c, chunk=chunk: (self.api.call(
                         "ecs", "DescribeServices", cluster=c, services=chunk) or {}).get("services", []))
                     for c, arns in ((c, reads.result(f)) for c, f in listed) for chunk in _chunks(arns, 10)]
        return reads.joined(described)

    def _ecs_services(self, reads: Reads, described: list[dict[str, Any]], selected_tgs: set[str]) -> list[EcsService]:
        services = [s for s in described
                    if any(lb.get("targetGroupArn") in selected_tgs for lb in s.get("loadBalancers", []))]
        families = sorted({s["taskDefinition"] for s in services if s.get("taskDefinition")})
        definitions = dict(zip(families, reads.results([reads.start("ecs", lambda f=f: (self.api.call(
            "ecs", "DescribeTaskDefinition", taskDefinition=f) or {}).get("taskDefinition")) for f in families]),
            strict=True))
        return [aws_shapes.ecs_service(s, definitions.get(s.get("taskDefinition", "")), self.region, self.redactor)
                for s in services]
