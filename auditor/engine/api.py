"""All a check imports from the engine: what it yields (Problem, Skip) and what it reads (Context).

A check is a plain function in auditor/checks that says only what is wrong. Its rule's YAML says
what it runs on (`on:`): ``check(ctx)`` once for the whole snapshot, or ``check(ctx, subject)`` once
per subject of a kind (a host, a slot path, a target group, …; engine/subjects.py). The engine
(engine/evaluate.py) runs it and owns the rest: the loop, naming the subject, merging repeats.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from auditor.model.keys import Keys
from auditor.model.refs import Location, Ref
from auditor.model.snapshot import (RESOURCE_TYPES, EcsService, Listener, ListenerRule, LoadBalancer, SecurityGroup,
                                    Snapshot, TargetGroup)
from auditor.topology import HostView, SlotPath, Topology, WayIn


@dataclass
class Problem:
    """What a check yields when it finds something; ``identity`` names the evidence fields (or
    ``file``/``line``) that identify the problem, so rewording a message never breaks a baseline.

    A check that runs on a subject leaves ``resource`` out: the finding names the subject (and a slot
    path's slot). Problems with one fingerprint are one finding; their evidence lists in
    ``MERGED_EVIDENCE`` (the instances, the locations it was seen at) are joined."""

    resource: Ref | str | None = None
    message: str = ""
    slot: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    identity: tuple[str, ...] = ()
    file: str | None = None
    line: int | None = None
    remediation: str | None = None  # the fix for this case, when the rule's general one does not fit it
    at_most: str | None = None  # a severity this case cannot exceed: it reaches less than the rule's usual case

    def identity_values(self) -> dict[str, Any]:
        own = {"file": self.file, "line": self.line}
        return {k: self.evidence[k] if k in self.evidence else own.get(k) for k in self.identity}


def located(location: Location | None) -> dict[str, Any]:
    """A Problem's ``file`` and ``line`` keywords for a location (none when there is none)."""
    return {"file": location.file or None, "line": location.line or None} if location else {}


@dataclass
class Skip:
    """A check could not decide for lack of data; ``reason`` names the data. Left out, ``resource``
    is the subject the check runs on (and a slot path's slot)."""

    reason: str
    resource: Ref | str | None = None
    slot: str | None = None


@dataclass
class Context:
    """What a check may read: the snapshot, its keys and topology, the rule's options (declared
    defaults filled in) and ``hosts``: the host descriptions that have every layer the rule needs."""

    snapshot: Snapshot
    keys: Keys
    topology: Topology
    options: dict[str, Any] = field(default_factory=dict)
    hosts: list[HostView] = field(default_factory=list)

    def ref(self, item: Any) -> Ref:
        """How findings name a resource, a host, a slot path (its target group) or a way in."""
        return ref_of(item, self.keys)


# Evidence lists that grow when one problem is seen again (on another instance, at another place).
MERGED_EVIDENCE = ("instances", "locations")


# The snapshot collection of each resource a check may name: Keys.of gives its role key.
_COLLECTION = {LoadBalancer: "load_balancers", Listener: "listeners", ListenerRule: "listener_rules",
               TargetGroup: "target_groups", SecurityGroup: "security_groups", EcsService: "ecs_services"}


def ref_of(item: Any, keys: Keys) -> Ref:
    """The Ref of a resource of the snapshot or a subject of the topology."""
    if isinstance(item, HostView):
        return Ref("host", keys.host(item.host))
    if isinstance(item, SlotPath):
        return item.unit.resource_for(item.slot)
    if isinstance(item, WayIn):
        return item.resource
    collection = _COLLECTION.get(type(item))
    if collection is None:
        raise TypeError(f"no reference for {type(item).__name__}")
    return Ref(RESOURCE_TYPES[collection], keys.of(collection, item))


# One encoder for every finding: json.dumps builds a new one per call when given options.
IDENTITY_JSON = json.JSONEncoder(sort_keys=True, default=str)


def fingerprint(rule_id: str, resource: Ref | str, slot: str | None, identity: dict[str, Any]) -> str:
    blob = IDENTITY_JSON.encode([rule_id, str(resource), slot, identity])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
