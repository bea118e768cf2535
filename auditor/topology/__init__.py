"""The topology: facts joined into traffic paths, per slot. ``paths`` (the estate: listeners, target
groups, their targets and hosts), ``estate`` (units, targets, slot paths), ``host`` (one host: does a
port reach a slot), ``names`` (what nginx resolves), ``ports`` (proved, ruled out, unknown), ``nginx``
(proxy targets, servers, locations), ``targets`` (proxy URLs), ``ways_in`` (security groups between
the ALB and its targets), ``shapes`` (paths as people read them)."""

from auditor.topology.host import HostView, Reach
from auditor.topology.names import ANY_ADDRESS, LOOPBACK_NAMES, is_address, is_loopback
from auditor.topology.nginx import ProxyVerdict, Route, match_location
from auditor.topology.estate import SlotPath, Unit
from auditor.topology.paths import Topology, health_check_port, joined
from auditor.topology.ports import healthcheck_port, port_variable, unproved_reason
from auditor.topology.targets import NGINX_VARIABLE, Endpoint, ProxyTarget, parse_url
from auditor.topology.ways_in import WayIn

__all__ = ["ANY_ADDRESS", "LOOPBACK_NAMES", "NGINX_VARIABLE", "Endpoint", "HostView", "ProxyTarget", "ProxyVerdict",
           "Reach", "Route", "SlotPath", "Topology", "Unit", "WayIn", "health_check_port", "healthcheck_port",
           "is_address", "is_loopback", "joined", "match_location", "parse_url", "port_variable", "unproved_reason"]
