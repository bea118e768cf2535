"""Collection against moto in server mode, through a proxy that adds 30 ms to every call (real AWS
answers in tens of milliseconds; bare moto in ~3 ms, where concurrency cannot show).

Compares `audit snapshot` with a floor: the same boto3 calls made one after another, the least a
tool could send for the same data. Also runs Prowler, the peer, on the same estate when it is
installed (bench/README.md says how `make bench` installs it into its own venv).
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults import FaultProxy, first, query_error  # noqa: E402

REGION = "us-east-1"
LATENCY = 0.030


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build(endpoint: str, services: int) -> None:
    """``services`` ALBs, each with a listener, a target group and two registered instances."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    ec2, elbv2 = session.client("ec2", endpoint_url=endpoint), session.client("elbv2", endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
        "SubnetId"] for i, z in enumerate("ab")]
    alb_sg = ec2.create_security_group(GroupName="alb", Description="alb", VpcId=vpc)["GroupId"]
    app_sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=app_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": alb_sg}]}])
    instances = [i["InstanceId"] for i in ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=2 * services, MaxCount=2 * services, SubnetId=subnets[0],
        SecurityGroupIds=[app_sg])["Instances"]]
    tag = [{"Key": "Environment", "Value": "bench"}]
    for i in range(services):
        lb = elbv2.create_load_balancer(Name=f"svc{i}-alb", Subnets=subnets, SecurityGroups=[alb_sg],
                                        Tags=tag)["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elbv2.create_target_group(Name=f"svc{i}-tg", Protocol="HTTP", Port=80, VpcId=vpc,
                                       Tags=tag)["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                              DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": x} for x in instances[2 * i:2 * i + 2]])


def floor(endpoint: str) -> Counter[str]:
    """The same data with the least calls, one after another: the baseline for collection."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    calls: Counter[str] = Counter()
    clients = {}
    for name in ("elbv2", "ec2", "ecs"):
        client = session.client(name, endpoint_url=endpoint)
        client.meta.events.register("before-call", lambda model, n=name, **_: calls.update([f"{n}.{model.name}"]))
        clients[name] = client
    elbv2, ec2, ecs = clients["elbv2"], clients["ec2"], clients["ecs"]

    def pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[Any]:
        return [x for page in client.get_paginator(operation).paginate(**kwargs) for x in page.get(key, [])]

    lbs = pages(elbv2, "describe_load_balancers", "LoadBalancers")
    tgs = pages(elbv2, "describe_target_groups", "TargetGroups")
    arns = [lb["LoadBalancerArn"] for lb in lbs] + [tg["TargetGroupArn"] for tg in tgs]
    for start in range(0, len(arns), 20):
        elbv2.describe_tags(ResourceArns=arns[start:start + 20])
    listeners = []
    for lb in lbs:
        elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])
        listeners += pages(elbv2, "describe_listeners", "Listeners", LoadBalancerArn=lb["LoadBalancerArn"])
    for listener in listeners:
        pages(elbv2, "describe_rules", "Rules", ListenerArn=listener["ListenerArn"])
    targets = set()
    for tg in tgs:
        elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])
        health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        targets |= {d["Target"]["Id"] for d in health}
    pages(ecs, "list_clusters", "clusterArns")
    reservations = pages(ec2, "describe_instances", "Reservations",
                         Filters=[{"Name": "instance-id", "Values": sorted(targets)}])
    groups = {g["GroupId"] for lb in lbs for g in [{"GroupId": x} for x in lb.get("SecurityGroups", [])]}
    groups |= {g["GroupId"] for r in reservations for i in r["Instances"] for g in i.get("SecurityGroups", [])}
    found = pages(ec2, "describe_security_groups", "SecurityGroups", Filters=[{"Name": "group-id",
                                                                               "Values": sorted(groups)}])
    referenced = {p["GroupId"] for sg in found for perm in sg.get("IpPermissions", [])
                  for p in perm.get("UserIdGroupPairs", [])} - groups
    if referenced:
        pages(ec2, "describe_security_groups", "SecurityGroups", Filters=[{"Name": "group-id",
                                                                           "Values": sorted(referenced)}])
    subnets = sorted({z["SubnetId"] for lb in lbs for z in lb.get("AvailabilityZones", [])})
    pages(ec2, "describe_subnets", "Subnets", Filters=[{"Name": "subnet-id", "Values": subnets}])
    return calls


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds spent, while a block runs, by audit (a child), moto (another process) and the
    latency proxy (this process's threads): on a 2-core machine their sum over 2 is a floor of its own."""

    def __init__(self, moto_pid: int) -> None:
        self.moto_pid = moto_pid

    def __enter__(self) -> Cpu:
        self._start = (resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF),
                       cpu_seconds(self.moto_pid))
        return self

    def __exit__(self, *exc: object) -> None:
        children, own, moto = self._start
        now_children, now_own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        self.audit = now_children.ru_utime + now_children.ru_stime - children.ru_utime - children.ru_stime
        self.proxy = now_own.ru_utime + now_own.ru_stime - own.ru_utime - own.ru_stime
        self.moto = cpu_seconds(self.moto_pid) - moto

    def columns(self) -> str:
        bound = (self.audit + self.moto + self.proxy) / (os.cpu_count() or 1)
        return f"{self.audit:5.2f} s | {self.moto:5.2f} s | {bound:5.2f} s"


def audit_snapshot(config: Path, out: Path, *args: str) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "auditor", "snapshot", "bench", "-c", str(config), "-o", str(out),
                           "--quiet", *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"audit snapshot failed: {proc.stderr}")
    data = yaml.safe_load(out.read_text())
    calls = sum(n for source in data["sources"].values() for n in source["api_calls"].values())
    return elapsed, calls


def prowler(endpoint: str, tmp: Path) -> float | None:
    binary = os.environ.get("PROWLER") or str(ROOT / "bench" / ".prowler-venv" / "bin" / "prowler")
    if not os.path.exists(binary):
        return None
    checks = ["elbv2_deletion_protection", "elbv2_alb_drop_invalid_header_fields_enabled", "elbv2_desync_mitigation_mode",
              "elbv2_insecure_ssl_ciphers", "elbv2_logging_enabled", "elbv2_listeners_underneath",
              "ec2_securitygroup_allow_ingress_from_internet_to_all_ports",
              "ec2_securitygroup_allow_ingress_from_internet_to_any_port",
              "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22"]
    # Prowler checks for new versions and downloads IP ranges: point those at a closed port.
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "NO_PROXY": "127.0.0.1,localhost"}
    start = time.perf_counter()
    subprocess.run([binary, "aws", "-f", REGION, "--checks", *checks, "--no-banner", "-o", str(tmp / "prowler"),
                    "--output-formats", "csv"], env=env, capture_output=True, timeout=600)
    return time.perf_counter() - start


def start_moto(port: int) -> subprocess.Popen[bytes]:
    """moto in its own process, so its work does not compete with the proxy's threads for one GIL."""
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.1)
    server.kill()
    raise SystemExit("moto server did not start")


def main() -> tuple[list[str], list[str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    budgets = ["| budget (issue #17) | measured | limit | verdict |", "|---|---|---|---|"]
    try:
        with tempfile.TemporaryDirectory(prefix="audit-bench-") as name:
            tmp = Path(name)
            services = int(os.environ.get("BENCH_SERVICES", "100"))
            build(endpoint, services)
            with FaultProxy(endpoint) as proxy:
                proxy.rules.append(lambda body: LATENCY)  # every call waits 30 ms, like real AWS
                config = tmp / "audit.yaml"
                config.write_text(yaml.safe_dump({"version": 1, "environments": {"bench": {"aws": {
                    "region": REGION, "endpoint_url": proxy.url, "scope": {"tags": {"Environment": "bench"}}}}}}))
                os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
                with Cpu(server.pid) as cpu:
                    start = time.perf_counter()
                    floor_calls = floor(proxy.url)
                    floor_time = time.perf_counter() - start
                minimum = sum(floor_calls.values())
                lines.append(f"| collection floor (sequential boto3) | {services} ALBs | {floor_time:6.2f} s | "
                             f"1.00× | {minimum} calls (the minimum) | {cpu.proxy:5.2f} s (in the bench) | "
                             f"{cpu.moto:5.2f} s | |")
                at: dict[str, float] = {}
                for concurrency in ("1", "4", "8", "16"):
                    with Cpu(server.pid) as cpu:
                        elapsed, calls = audit_snapshot(config, tmp / "s.json", "--concurrency", concurrency)
                    at[concurrency] = elapsed
                    lines.append(f"| audit snapshot --concurrency {concurrency:<2} | {services} ALBs | {elapsed:6.2f} s | "
                                 f"{floor_time / elapsed:4.2f}× | {calls} calls"
                                 f"{'' if calls == minimum else f' (minimum {minimum})'} | {cpu.columns()} |")
                proxy.rules.insert(0, first(10, "DescribeTargetHealth", query_error("Throttling", "Rate exceeded")))
                proxy.rules.insert(0, first(5, "DescribeLoadBalancerAttributes", query_error("Throttling", "slow")))
                with Cpu(server.pid) as cpu:
                    throttled, calls = audit_snapshot(config, tmp / "t.json")
                lines.append(f"| audit snapshot, 15 calls throttled | {services} ALBs | {throttled:6.2f} s | "
                             f"{floor_time / throttled:4.2f}× | complete: {calls} calls | {cpu.columns()} |")
                budgets += [
                    f"| collection at the default 8 in flight, against the floor | {floor_time / at['8']:.2f}× | "
                    f"≥ 8× | {'met' if floor_time / at['8'] >= 8 else 'MISSED'} |",
                    f"| 15 calls throttled, against unthrottled | {throttled / at['8']:.2f}× | ≤ 1.5× | "
                    f"{'met' if throttled / at['8'] <= 1.5 else 'MISSED'} |",
                ]
            # The peer, on the same estate, straight against moto (tool time, not AWS latency).
            config.write_text(config.read_text().replace(proxy.url, endpoint))
            ours = time.perf_counter()
            audit_snapshot(config, tmp / "p.json")
            subprocess.run([sys.executable, "-m", "auditor", "check", str(tmp / "p.json"), "--quiet"],
                           capture_output=True)
            ours = time.perf_counter() - ours
            peer = prowler(endpoint, tmp)
            lines.append(f"| audit snapshot + check (path, ALB, TG, SG, nginx, docker rules) | {services} ALBs | "
                         f"{ours:6.2f} s | | | | | |")
            lines.append(f"| Prowler 9 ELBv2/SG checks (no target groups, no hosts) | {services} ALBs | "
                         + (f"{peer:6.2f} s | {peer / ours:4.2f}× audit's time | | | | |" if peer else
                            "not installed | | `make bench` installs it | | | |"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return lines, budgets


if __name__ == "__main__":
    rows, budgets = main()
    print("| what | estate | wall time | vs floor | API calls | audit CPU | moto CPU | CPU floor (all CPU / cores) |\n"
          "|---|---|---|---|---|---|---|---|")
    print("\n".join(rows + [""] + budgets))
