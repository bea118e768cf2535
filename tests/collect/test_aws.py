"""The AWS collector against moto in server mode, through boto3 over HTTP."""

from __future__ import annotations

import boto3
import pytest

from auditor import collect, config, gate
from auditor.model import snapshot
from auditor.model.scope import members
from auditor.engine import evaluate
from auditor.engine.catalog import builtin_catalog
from auditor.collect.aws.api import ReadOnlyViolation
from auditor.collect.aws.collector import AwsCollector
from auditor.config import Aws, TagMatch
from auditor.fixtures import estates
from tests.conftest import SNAPSHOTS


def collector(**kwargs) -> AwsCollector:
    return AwsCollector(Aws(region="us-east-1", **kwargs), "us-east-1")


def run(c: AwsCollector):
    return c.collect()


@pytest.fixture
def incident(aws, tmp_path):
    return config.load(estates.build_incident(tmp_path, aws))


def test_collects_the_incident_dev_estate_within_its_scope(incident):
    snap = collect.collect(incident, "dev", collect.CollectOptions())
    res = snap.resources
    assert [lb.name for lb in res.load_balancers] == ["web-dev-alb"]
    assert [(tg.name, tg.port, tg.health_check.path) for tg in res.target_groups] == [("web-dev-tg", 3000, "/health-check")]
    (listener,) = res.listeners
    assert listener.port == 80 and listener.ssl_policy is None  # moto's SslPolicy on HTTP is dropped
    assert [t.arn for t in listener.default_actions[0].target_groups] == [res.target_groups[0].arn]
    assert [(h.target_id, h.port) for h in res.target_health] == [(res.instances[0].id, 3000)]
    assert res.instances[0].tags["Role"] == "web"
    app_sg = next(sg for sg in res.security_groups if sg.name == "web-dev-app-sg")
    alb_sg = next(sg for sg in res.security_groups if sg.name == "web-dev-alb-sg")
    assert {(r.from_port, r.source_group) for r in app_sg.ingress} == {(3000, alb_sg.id), (4000, alb_sg.id)}
    assert {s.cidr for s in res.load_balancers[0].subnets} == {"10.10.0.0/24", "10.10.1.0/24"}
    assert snap.sources["aws:default/us-east-1"].status == "ok"
    assert snap.sources["aws:default/us-east-1"].api_calls["elbv2.DescribeTargetHealth"] == 1
    assert all(lb.account == "123456789012" for lb in res.load_balancers)


def test_the_plan_places_resources_by_the_rule_the_collector_reads_by(incident):
    # One rule (model/scope.py): what the scoped collection read is exactly what that rule reaches
    # from the scope, and the other environment's resources in the same account stay out of it.
    def everything(res):
        return {id(m) for field in res.__struct_fields__ for m in getattr(res, field)}

    dev = collect.collect(incident, "dev", collect.CollectOptions()).resources
    prod = collect.collect(incident, "prod", collect.CollectOptions()).resources
    wanted = {"Environment": "dev"}
    assert members(dev, wanted, []) == everything(dev)
    # Plans create no instances: prod's AWS resources beside dev's, not its instances.
    both = snapshot.Resources(**{f: getattr(dev, f) + [m for m in getattr(prod, f) if m not in getattr(dev, f)
                                                       and f not in ("instances", "hosts")] for f in dev.__struct_fields__})
    assert members(both, wanted, []) == everything(dev)
    assert len(everything(both)) > len(everything(dev)) + 5


def test_demo_estates_give_the_same_findings_as_the_hand_written_snapshots(incident):
    catalog = builtin_catalog()

    def found(snap, env):
        return [(f.rule_id, f.resource, f.slot, f.severity) for f in evaluate.run(snap, [env], catalog).findings]

    for env in ("dev", "prod"):
        live = collect.collect(incident, env, collect.CollectOptions())
        hand = snapshot.load(SNAPSHOTS / f"incident-{env}.json")
        assert found(live, env) == found(hand, env)
        high = [f[:3] for f in found(live, env) if f[3] in ("critical", "high")]
        assert high == ([("P104", "target_group:web-*-tg", "green")] if env == "dev" else [])


def test_the_incident_with_nginx_as_a_compose_service(aws, tmp_path):
    """The same estates with prod's nginx as a compose service that proxies $service_url to app-blue /
    app-green by name: the same high findings as with nginx on the host, and the same gate."""
    incident = config.load(estates.build_incident(tmp_path, aws, nginx_in="compose"))
    catalog = builtin_catalog()
    prod = collect.collect(incident, "prod", collect.CollectOptions())
    web = prod.resources.hosts[0]
    assert web.nginx.service == "proxy" and web.nginx.refusals == [] and web.nginx.unreadable == []
    for env in ("dev", "prod"):
        snap = prod if env == "prod" else collect.collect(incident, env, collect.CollectOptions())
        high = [(f.rule_id, f.resource, f.slot) for f in evaluate.run(snap, [env], catalog).findings
                if f.severity in ("critical", "high")]
        assert high == ([("P104", "target_group:web-*-tg", "green")] if env == "dev" else [])
    assert gate.evaluate(evaluate.run(prod, ["prod"], catalog), "green", "high").outcome == "pass"
    # The near misses: the switch include mounted alone (P119), and no resolver for the name (P105).
    compose = tmp_path / "envs" / "prod" / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("./nginx/switch:/etc/nginx/switch:ro",
                                                   "./nginx/switch/service-url.inc:/etc/nginx/switch/service-url.inc"))
    site = tmp_path / "envs" / "prod" / "nginx" / "default.conf"
    site.write_text(site.read_text().replace("    resolver 127.0.0.11 valid=10s;\n", ""))
    broken = evaluate.run(collect.collect(incident, "prod", collect.CollectOptions()), ["prod"], catalog)
    assert sorted((f.rule_id, f.line) for f in broken.findings if f.severity == "high") == [("P105", 6), ("P119", 1)]
    assert gate.evaluate(broken, "green", "high").outcome == "fail"


def test_secrets_in_compose_env_never_reach_the_snapshot(incident, monkeypatch):
    monkeypatch.setenv("AUDIT_REDACTION_KEY", "k")
    snap = collect.collect(incident, "dev", collect.CollectOptions(redactor=snapshot.Redactor("k")))
    text = snapshot.dumps(snap)
    assert estates.PLANTED_SECRET not in text and "Sup3rSecret" not in text
    assert '"DATABASE_URL": "hmac:' in text


def test_load_balancers_past_motos_page_of_fifty_are_all_collected(aws):
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"][
        "SubnetId"] for i, z in enumerate("ab")]
    elbv2 = boto3.client("elbv2")
    for i in range(60):
        elbv2.create_load_balancer(Name=f"lb-{i:02d}", Subnets=subnets)
    resources, status = run(collector())
    assert len(resources.load_balancers) == 60
    assert status.api_calls["elbv2.DescribeLoadBalancers"] == 2  # two pages
    assert status.api_calls["elbv2.DescribeTags"] == 3  # 20 ARNs a call


def test_the_collector_refuses_any_operation_that_could_change_the_account(aws):
    api = collector().api
    with pytest.raises(ReadOnlyViolation, match="refusing elbv2:CreateTargetGroup"):
        api.client("elbv2").create_target_group(Name="x", Protocol="HTTP", Port=80, VpcId="vpc-1")
    with pytest.raises(ReadOnlyViolation, match="refusing ec2:AuthorizeSecurityGroupIngress"):
        api.client("ec2").authorize_security_group_ingress(GroupId="sg-1", IpPermissions=[])
    assert boto3.client("elbv2").describe_target_groups()["TargetGroups"] == []
    assert "elbv2.CreateTargetGroup" not in api.calls


def test_weighted_forward_redirect_and_rules_are_normalized(aws):
    ec2, elbv2 = boto3.client("ec2"), boto3.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"][
        "SubnetId"] for i, z in enumerate("ab")]
    lb = elbv2.create_load_balancer(Name="web-alb", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (elbv2.create_target_group(Name=f"web-{c}-tg", Protocol="HTTP", Port=p, VpcId=vpc)["TargetGroups"][
        0]["TargetGroupArn"] for c, p in (("blue", 3000), ("green", 4000)))
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=443, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": blue, "Weight": 100},
                                                              {"TargetGroupArn": green, "Weight": 0}]}}])
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{
        "Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])
    elbv2.create_rule(ListenerArn=listener["Listeners"][0]["ListenerArn"], Priority=10,
                      Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                      Actions=[{"Type": "forward", "TargetGroupArn": green}])
    resources, _ = run(collector())
    by_port = {lst.port: lst for lst in resources.listeners}
    assert [(t.arn, t.weight) for t in by_port[443].default_actions[0].target_groups] == [(blue, 100), (green, 0)]
    assert by_port[80].default_actions[0].type == "redirect"
    assert by_port[80].default_actions[0].redirect["StatusCode"] == "HTTP_301"
    (rule,) = [r for r in resources.listener_rules if not r.is_default]
    assert rule.priority == "10" and rule.listener_arn == by_port[443].arn
    assert rule.conditions[0]["Values"] == ["/api/*"]


def test_ecs_service_with_its_task_definition_feeds_p110(aws):
    ec2, elbv2, ecs = boto3.client("ec2"), boto3.client("elbv2"), boto3.client("ecs")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    tg = elbv2.create_target_group(Name="api-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")[
        "TargetGroups"][0]["TargetGroupArn"]
    sg = ec2.create_security_group(GroupName="api-task-sg", Description="tasks", VpcId=vpc)["GroupId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ecs.create_cluster(clusterName="main")
    ecs.register_task_definition(family="api", networkMode="awsvpc", containerDefinitions=[
        {"name": "api", "image": "api:2", "memory": 256, "portMappings": [{"containerPort": 3000}],
         "environment": [{"name": "API_TOKEN", "value": "tok-123"}, {"name": "PORT", "value": "3000"}]}])
    ecs.create_service(cluster="main", serviceName="api", taskDefinition="api", desiredCount=1,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "api", "containerPort": 8080}],
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg]}})
    resources, _ = run(collector())
    (service,) = resources.ecs_services
    assert service.security_groups == [sg]
    assert service.task_definition.network_mode == "awsvpc"
    assert service.task_definition.containers[0].environment == {"API_TOKEN": "<redacted>", "PORT": "3000"}
    snap = snapshot.Snapshot(environment="stage", resources=resources)
    findings = evaluate.run(snap, ["stage"], builtin_catalog()).findings
    assert [(f.rule_id, f.resource) for f in findings if f.rule_id == "P110"] == [("P110", "ecs_service:main/api")]
    assert [f.rule_id for f in findings if f.rule_id == "P117"] == ["P117"]  # stopTimeout 30 s, drain 300 s


def test_scope_collects_untagged_things_the_selected_load_balancer_references(aws):
    ec2, elbv2 = boto3.client("ec2"), boto3.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"][
        "SubnetId"] for i, z in enumerate("ab")]
    sg = ec2.create_security_group(GroupName="untagged-alb-sg", Description="x", VpcId=vpc)["GroupId"]
    lb = elbv2.create_load_balancer(Name="web-alb", Subnets=subnets, SecurityGroups=[sg],
                                    Tags=[{"Key": "Environment", "Value": "dev"}])["LoadBalancers"][0]["LoadBalancerArn"]
    untagged_tg = elbv2.create_target_group(Name="untagged-tg", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": untagged_tg}])
    elbv2.create_load_balancer(Name="other-alb", Subnets=subnets)
    resources, _ = run(AwsCollector(Aws(region="us-east-1", scope=TagMatch(tags={"Environment": "dev"})), "us-east-1"))
    assert [lb.name for lb in resources.load_balancers] == ["web-alb"]
    assert [tg.name for tg in resources.target_groups] == ["untagged-tg"]
    assert [g.name for g in resources.security_groups] == ["untagged-alb-sg"]


def test_snapshot_command_writes_the_file_and_a_failed_collection_keeps_the_old_one(incident, tmp_path):
    from tests.test_cli import audit

    config_path = incident.base_dir / "audit.yaml"
    out = tmp_path / "dev.json"
    proc = audit("snapshot", "dev", "-c", str(config_path), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert snapshot.load(out).resources.target_groups[0].port == 3000
    before = out.read_text()
    (incident.base_dir / "envs" / "dev" / "docker-compose.yml").write_text("services: [\n")
    proc = audit("snapshot", "dev", "-c", str(config_path), "-o", str(out))
    assert proc.returncode == 2 and "invalid YAML" in proc.stderr and "Traceback" not in proc.stderr
    assert out.read_text() == before
    assert audit("snapshot", "dev", "-c", str(config_path), "-o", str(out), "--allow-partial").returncode == 0
    partial = snapshot.load(out)
    assert partial.sources["host:web"].status == "error"
    assert "docker" in partial.resources.hosts[0].uncollected


def test_check_gate_and_diff_collect_environment_names_live(incident):
    from tests.test_cli import audit

    config_path = str(incident.base_dir / "audit.yaml")
    assert audit("gate", "dev", "--slot", "green", "-c", config_path).returncode == 1
    assert audit("gate", "dev", "--slot", "blue", "-c", config_path).returncode == 0
    assert audit("gate", "prod", "-c", config_path).returncode == 0
    proc = audit("diff", "dev", "prod", "-c", config_path, "--format", "json")
    drift = {(d["resource_type"], d["key"], d["path"]): (d["a"], d["b"]) for d in __import__("json").loads(proc.stdout)["drift"]}
    assert drift[("target_group", "web-*-tg", "port")] == (3000, 80)
    assert drift[("path", "web-*-alb:80/blue", "nginx")] == (None, "nginx:80")


def test_timeout_stops_collection_with_one_line_and_no_file(incident, tmp_path):
    from tests.test_cli import audit

    out = tmp_path / "dev.json"
    proc = audit("snapshot", "dev", "-c", str(incident.base_dir / "audit.yaml"), "-o", str(out), "--timeout", "0.001")
    assert proc.returncode == 2
    assert "did not finish within --timeout 0.001 s" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("seconds", ["0", "-1"])
def test_a_timeout_of_no_time_is_a_usage_error(incident, seconds):
    from tests.test_cli import assert_one_line_error, audit

    proc = audit("snapshot", "dev", "-c", str(incident.base_dir / "audit.yaml"), "--timeout", seconds)
    assert_one_line_error(proc, "Invalid value for '--timeout'", "(see `audit snapshot --help`)")


def test_one_request_in_flight_per_service_still_completes_without_deadlock(incident):
    c = AwsCollector(incident.environments["dev"].aws, "us-east-1", concurrency=1)
    resources, status = run(c)
    assert [tg.name for tg in resources.target_groups] == ["web-dev-tg"]
    assert status.status == "ok"


def test_the_example_iam_policy_grants_every_operation_the_collector_calls(incident):
    import json

    from auditor.collect import iam_action
    from tests.conftest import ROOT

    ec2, elbv2, ecs = boto3.client("ec2"), boto3.client("elbv2"), boto3.client("ecs")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    tg = elbv2.create_target_group(Name="api-dev-tg", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip",
                                   Tags=[{"Key": "Environment", "Value": "dev"}])["TargetGroups"][0]["TargetGroupArn"]
    ecs.create_cluster(clusterName="main")
    ecs.register_task_definition(family="api", containerDefinitions=[
        {"name": "api", "image": "api:2", "memory": 256, "portMappings": [{"containerPort": 8080}]}])
    ecs.create_service(cluster="main", serviceName="api", taskDefinition="api", desiredCount=1,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "api", "containerPort": 8080}])
    policy = json.loads((ROOT / "examples" / "iam-policy.json").read_text())
    granted = {a for s in policy["Statement"] for a in s["Action"]}
    snap = collect.collect(incident, "dev", collect.CollectOptions())
    # api_calls is what botocore's before-call hook saw, every operation the collector sent
    called = {iam_action(op.replace(".", ":", 1)) for op in snap.sources["aws:default/us-east-1"].api_calls}
    assert {"ecs:DescribeServices", "ecs:DescribeTaskDefinition", "elasticloadbalancing:DescribeRules"} <= called
    assert called <= granted
    assert all(a.split(":")[1].startswith(("Describe", "List", "Get")) for a in granted)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "markdown", "html"])
def test_every_format_on_the_live_demo_estate(incident, fmt):
    from tests.test_cli import audit

    config_path = str(incident.base_dir / "audit.yaml")
    for args in (["check", "dev"], ["diff", "dev", "prod"], ["gate", "dev", "--slot", "green"]):
        proc = audit(*args, "-c", config_path, "--format", fmt)
        assert proc.returncode == 1, proc.stderr
        assert "P104" in proc.stdout or args[0] == "diff"


def test_alb_and_target_group_rules_on_live_aws_data(incident, aws):
    """The rules that read AWS attributes, once through the moto server: fire on the demo's
    defaults, quiet once the settings are made safe through the API."""
    catalog = builtin_catalog()

    def ids() -> set[str]:
        snap = collect.collect(incident, "prod", collect.CollectOptions())
        return {f.rule_id for f in evaluate.run(snap, ["prod"], catalog).findings}

    assert {"A201", "A203", "A204", "A205", "T302"} <= ids()
    elbv2 = boto3.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=["web-prod-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.describe_target_groups(Names=["web-prod-tg"])["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"},
        {"Key": "access_logs.s3.enabled", "Value": "true"}, {"Key": "access_logs.s3.bucket", "Value": "logs"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}])
    elbv2.modify_target_group(TargetGroupArn=tg, HealthCheckIntervalSeconds=10, HealthyThresholdCount=3)
    (listener,) = elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]
    elbv2.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=[
        {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])
    assert {"A201", "A203", "A204", "A205", "T302"}.isdisjoint(ids())


def test_shard_accepts_the_credentials_own_account_id_as_well_as_default(incident, tmp_path):
    from tests.test_cli import assert_one_line_error, audit

    config_path = str(incident.base_dir / "audit.yaml")
    out = tmp_path / "dev.json"
    # moto's account is 123456789012: the id a user copies from the console names the default slice
    proc = audit("snapshot", "dev", "-c", config_path, "--shard", "123456789012/us-east-1", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert snapshot.load(out).slices == ["default/us-east-1"]
    assert_one_line_error(audit("snapshot", "dev", "-c", config_path, "--shard", "111111111111/us-east-1"),
                          "--shard 111111111111/us-east-1", "account 123456789012, not 111111111111")
    assert_one_line_error(audit("snapshot", "dev", "-c", config_path, "--shard", "123456789012/eu-west-1"),
                          "has the slices default/us-east-1")


def test_init_drafts_the_demo_estate_from_its_files_and_the_accounts_tags(incident, tmp_path):
    import yaml

    from tests.test_cli import audit

    root = incident.base_dir
    (root / "audit.yaml").rename(tmp_path / "hand-written.yaml")
    proc = audit("init", str(root), "--aws", "--region", "us-east-1")
    assert proc.returncode == 0, proc.stderr
    draft = yaml.safe_load((root / "audit.yaml").read_text())["environments"]
    assert sorted(draft) == ["dev", "prod"]
    for env in ("dev", "prod"):
        (host,) = draft[env]["hosts"]
        assert draft[env]["aws"] == {"region": "us-east-1", "scope": {"tags": {"Environment": env}}}
        assert host["name"] == "web" and host["match"] == {"tags": {"Role": "web"}}
        assert host["docker"]["slots"] == {"blue": {"service": "app-blue"}, "green": {"service": "app-green"}}
    assert draft["prod"]["hosts"][0]["nginx"] == {"path": "envs/prod/nginx/nginx.conf"}
    assert "nginx" not in draft["dev"]["hosts"][0]
    config_path = str(root / "audit.yaml")
    assert audit("gate", "dev", "--slot", "green", "-c", config_path).returncode == 1
    assert audit("gate", "prod", "-c", config_path).returncode == 0
