"""Role keys: what a resource *is* across environments, free of ids, ARNs and env tokens.

`web-dev-tg` in dev and `web-prod-tg` in prod are both `web-*-tg`; findings and
drift name resources by these keys (DESIGN.md "Keys").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from auditor.model.snapshot import EcsService, Host, Instance, Listener, ListenerRule, Snapshot, TargetHealth

_PARTS = re.compile(r"([-_.\s/:])")
TRAILING_INDEX = re.compile(r"[-_.]?\d+$")


def strip_tokens(name: str, tokens: Iterable[str]) -> str:
    """Replace each environment token that stands as a whole delimited part of ``name`` by ``*``."""
    return _strip(name, frozenset(t.lower() for t in tokens))


@functools.lru_cache(maxsize=65536)
def _strip(name: str, tokens: frozenset[str]) -> str:
    # Names repeat across a snapshot (tags, references): each is split once.
    return "".join("*" if part.lower() in tokens else part for part in _PARTS.split(name))


class Keys:
    """Role keys for every resource of one snapshot, computed once and looked up by id or ARN."""

    def __init__(self, snapshot: Snapshot, tokens: Iterable[str]) -> None:
        self._lowered = frozenset(t.lower() for t in tokens)
        res = snapshot.resources
        self.load_balancer = {lb.arn: self._named(lb.tags, lb.name) for lb in res.load_balancers}
        self.target_group = {tg.arn: self._named(tg.tags, tg.name) for tg in res.target_groups}
        self.security_group = {sg.id: self._named(sg.tags, sg.name) for sg in res.security_groups}
        self.instance = {i.id: self._instance(i) for i in res.instances}
        self.listener = {lst.arn: self._listener(lst) for lst in res.listeners}

    def strip(self, name: str) -> str:
        return _strip(name, self._lowered)

    def _named(self, tags: dict[str, str], name: str) -> str:
        return self.strip(tags.get("Name") or name)

    def _instance(self, instance: Instance) -> str:
        if instance.tags.get("Role"):
            return self.strip(instance.tags["Role"])
        if instance.tags.get("Name"):
            return TRAILING_INDEX.sub("", self.strip(instance.tags["Name"])) or instance.tags["Name"]
        return instance.id

    def _listener(self, listener: Listener) -> str:
        lb = self.load_balancer.get(listener.load_balancer_arn, listener.load_balancer_arn)
        return f"{lb}:{listener.port}"

    def listener_rule(self, rule: ListenerRule) -> str:
        return f"{self.listener.get(rule.listener_arn, rule.listener_arn)}#{rule.priority}"

    def target(self, health: TargetHealth) -> str:
        tg = self.target_group.get(health.target_group_arn, health.target_group_arn)
        who = self.instance.get(health.target_id, health.target_id)
        return f"{tg}/{who}:{health.port}"

    def ecs_service(self, service: EcsService) -> str:
        cluster = service.cluster.rsplit("/", 1)[-1]
        return self.strip(f"{cluster}/{service.name}")

    def of(self, collection: str, resource: Any) -> str:
        """The role key of any resource, by the snapshot collection it sits in."""
        if collection == "load_balancers":
            return self.load_balancer[resource.arn]
        if collection == "listeners":
            return self.listener[resource.arn]
        if collection == "listener_rules":
            return self.listener_rule(resource)
        if collection == "target_groups":
            return self.target_group[resource.arn]
        if collection == "target_health":
            return self.target(resource)
        if collection == "security_groups":
            return self.security_group[resource.id]
        if collection == "instances":
            return self.instance[resource.id]
        if collection == "ecs_services":
            return self.ecs_service(resource)
        return self.host(resource)

    def host(self, host: Host) -> str:
        if host.instance_id:
            return f"{host.name}/{self.instance.get(host.instance_id, host.instance_id)}"
        return host.name
