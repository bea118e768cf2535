"""What a plan does to the findings and the paths: the findings it brings (each with the planned changes
behind it) and resolves, and the path shapes before and after."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from auditor.model.keys import Keys
from auditor.model.snapshot import (
    RESOURCE_TYPES,
    Snapshot,
)
from auditor.outcomes import Change, Finding, Result, Review
from auditor.plan.overlay import Planned
from auditor.topology import joined


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _touched_keys(change: Change, sides: list[tuple[Keys, Snapshot]]) -> set[str]:
    """The role keys (and ids) of what a change touches, in the snapshot before or after the plan."""
    found = set(change.ids)
    for keys, snapshot in sides:
        res = snapshot.resources
        for identity in change.ids:
            for table in (keys.load_balancer, keys.target_group, keys.security_group, keys.listener):
                if identity in table:
                    found.add(table[identity])
            found |= {keys.listener_rule(r) for r in res.listener_rules if r.arn == identity}
            found |= {keys.ecs_service(s) for s in res.ecs_services if s.arn == identity}
    return found


def _behind(finding: Finding, touched: list[tuple[Change, set[str]]]) -> list[Change]:
    """The changes that name a resource of the finding; those to the finding's own kind of resource
    first (a replaced group, not the attachments that follow it)."""
    kind, _, key = finding.resource.partition(":")
    mentioned = set(_strings(finding.evidence)) | {key}
    matched = [change for change, keys in touched
               if keys & mentioned or any(key.startswith(k + sep) for k in keys for sep in ":#/")]
    own = [change for change in matched if RESOURCE_TYPES.get(change.collection) == kind]
    return own or matched


def review(planned: Planned, before: Result, after: Result, snapshot: Snapshot, tokens: list[str]) -> Review:
    """Compare the checks of the environment as it is (``before``, of ``snapshot``) and as the plan
    leaves it (``after``)."""
    was = {f.fingerprint for f in before.findings}
    now = {f.fingerprint for f in after.findings}
    sides = [(joined(side, tokens).keys, side) for side in (snapshot, planned.snapshot)]
    touched = [(c, _touched_keys(c, sides)) for c in planned.changes]
    behind = {}
    for finding in after.findings:
        if finding.fingerprint in was:
            continue
        # A finding the plan brings is its doing: when no change names a resource of the finding,
        # every change stands behind it rather than none.
        behind[finding.fingerprint] = _behind(finding, touched) or list(planned.changes)
    return Review(planned.changes, planned.unknown, planned.outside, now - was,
                  [f for f in before.findings if f.fingerprint not in now], behind,
                  before.traffic.shapes, after.traffic.shapes)
