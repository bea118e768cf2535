"""Coverage: what the snapshot holds, per AWS operation and per host layer, and why the rest is missing.
A rule whose `needs` meet a gap is skipped with that reason, never passed on a guess."""

from __future__ import annotations

from dataclasses import dataclass

from auditor.outcomes import SkipCause
from auditor.model.snapshot import Snapshot, has_aws
from auditor.topology import HostView, Topology


@dataclass
class Gap:
    """Data a rule may need that the snapshot does not hold, and why."""

    reason: str
    cause: SkipCause


class Coverage:
    """What the snapshot holds, per AWS operation and per host layer."""

    def __init__(self, snapshot: Snapshot, topology: Topology) -> None:
        self.aws = _aws_gap(snapshot)
        self.failed = {e.operation: e for name, status in snapshot.sources.items() if name.startswith("aws")
                       for e in status.errors if e.operation}
        self.host_gaps: dict[int, dict[str, Gap]] = {}
        for view in topology.nginx_views:  # the host views and the nginx services beside their front ones
            self.host_gaps[id(view)] = _host_gaps(view)

    def aws_gap(self, needs: list[str]) -> Gap | None:
        if not needs:
            return None
        if self.aws is not None:
            return self.aws
        lacking = [self.failed[op] for op in needs if op in self.failed]
        if lacking:
            error = lacking[0]
            return Gap(f"{error.operation} failed during collection ({error.code or 'error'}): the data this rule "
                       "reads is incomplete", "not_collected")
        return None

    def host_gap(self, view: HostView, layers: list[str]) -> Gap | None:
        gaps = self.host_gaps[id(view)]
        return next((gaps[layer] for layer in layers if layer in gaps), None)


def _aws_gap(snapshot: Snapshot) -> Gap | None:
    """Why the snapshot holds no AWS facts, or None when it holds them (a snapshot written by hand,
    with no sources, holds what it says)."""
    if not snapshot.sources or has_aws(snapshot):
        return None
    aws = snapshot.sources.get("aws")
    why = aws.reason if aws is not None and aws.reason else "the snapshot holds host facts only"
    return Gap(f"AWS not collected ({why})", "not_requested")


def _host_gaps(view: HostView) -> dict[str, Gap]:
    gaps = {layer: Gap(reason, cause) for layer, (reason, cause) in view.layer_gaps.items()}
    nginx = view.host.nginx
    if nginx is not None and not nginx.files and nginx.unreadable and "nginx" not in gaps:
        gaps["nginx"] = Gap(f"host {view.name}: what nginx loads is unknown ({nginx.unreadable[0].message})",
                            "missing_data")
    return gaps
