"""One environment over two assumed-role accounts and two regions: collected whole, as shards,
merged; a denied role is a partial snapshot that names its slice."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml

from auditor import collect, config
from auditor.model import snapshot
from tests.faults import FaultProxy, query_error
from tests.test_cli import audit

ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("eu-west-1", "us-east-1")


def role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/audit-read"


def build_slice(endpoint: str, account: str, region: str) -> None:
    creds = boto3.client("sts", endpoint_url=endpoint).assume_role(RoleArn=role(account),
                                                                   RoleSessionName="build")["Credentials"]
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name=region)
    ec2, elbv2 = session.client("ec2", endpoint_url=endpoint), session.client("elbv2", endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{z}")["Subnet"][
        "SubnetId"] for i, z in enumerate("ab")]
    tag = [{"Key": "Environment", "Value": "prod"}]
    lb = elbv2.create_load_balancer(Name=f"web-prod-{region}", Subnets=subnets, Tags=tag)["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name=f"web-prod-{region}-tg", Protocol="HTTP", Port=80, VpcId=vpc, Tags=tag)
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tg["TargetGroups"][0]["TargetGroupArn"]}])


@pytest.fixture
def estate(aws, tmp_path):
    for account in ACCOUNTS:
        for region in REGIONS:
            build_slice(aws, account, region)

    def write(endpoint: str) -> config.Config:
        data = {"version": 1, "environments": {"prod": {"aws": {
            "endpoint_url": endpoint, "scope": {"tags": {"Environment": "prod"}},
            "accounts": [{"role_arn": role(a), "regions": list(REGIONS)} for a in ACCOUNTS]}}}}
        (tmp_path / "audit.yaml").write_text(yaml.safe_dump(data))
        return config.load(tmp_path / "audit.yaml")

    return write


def test_whole_collection_spans_every_account_and_region_and_keys_carry_no_account(estate, aws):
    snap = collect.collect(estate(aws), "prod", collect.CollectOptions())
    assert sorted((lb.account, lb.region) for lb in snap.resources.load_balancers) == [
        (a, r) for a in ACCOUNTS for r in REGIONS]
    assert sorted(snap.sources) == [f"aws:{a}/{r}" for a in ACCOUNTS for r in REGIONS]
    assert snap.slices == snap.expected_slices == [f"{a}/{r}" for a in ACCOUNTS for r in REGIONS]
    assert all(i.account in ACCOUNTS for i in snap.resources.target_groups)
    proc = audit("check", "prod", "-c", str(estate(aws).base_dir / "audit.yaml"), "--format", "json")
    assert not any(a in json.dumps(json.loads(proc.stdout)["findings"]) for a in ACCOUNTS)


def test_four_shards_merge_into_the_whole_collection(estate, aws, tmp_path):
    cfg = estate(aws)
    config_path = str(cfg.base_dir / "audit.yaml")
    whole = collect.collect(cfg, "prod", collect.CollectOptions())
    shards = []
    for account in ACCOUNTS:
        for region in REGIONS:
            out = tmp_path / f"prod-{account}-{region}.json"
            proc = audit("snapshot", "prod", "-c", config_path, "--shard", f"{account}/{region}", "-o", str(out))
            assert proc.returncode == 0, proc.stderr
            shards.append(str(out))
    merged_path = tmp_path / "merged.json"
    assert audit("merge", *shards, "-o", str(merged_path)).returncode == 0
    merged = snapshot.load(merged_path)
    assert snapshot.to_data(merged)["resources"] == snapshot.to_data(whole)["resources"]
    assert merged.slices == whole.slices
    # check accepts the shards directly and merges them first
    assert audit("check", *shards, "--fail-on", "never").returncode == 0
    proc = audit("merge", *shards[:3], "-o", str(merged_path))
    assert proc.returncode == 2 and f"missing the slices {ACCOUNTS[1]}/{REGIONS[1]}" in proc.stderr
    proc = audit("merge", *shards, shards[0], "-o", str(merged_path))
    assert proc.returncode == 2 and f"slice {ACCOUNTS[0]}/{REGIONS[0]} of prod is in two" in proc.stderr


def test_unknown_shard_names_the_slices(estate, aws, tmp_path):
    proc = audit("snapshot", "prod", "-c", str(estate(aws).base_dir / "audit.yaml"), "--shard", "333/eu-west-1",
                 "-o", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "has the slices 111111111111/eu-west-1" in proc.stderr


def test_a_denied_role_is_a_partial_snapshot_naming_its_slice(estate, aws, tmp_path):
    def deny_second_account(body: bytes) -> tuple[int, str] | None:
        if b"Action=AssumeRole" in body and ACCOUNTS[1].encode() in body:
            return query_error("AccessDenied", "not authorized to perform: sts:AssumeRole", 403)
        return None

    with FaultProxy(aws) as proxy:
        proxy.rules.append(deny_second_account)
        config_path = str(estate(proxy.url).base_dir / "audit.yaml")
        out = tmp_path / "prod.json"
        proc = audit("snapshot", "prod", "-c", config_path, "-o", str(out))
        assert proc.returncode == 2
        assert f"aws:{ACCOUNTS[1]}/" in proc.stderr and "grant sts:AssumeRole" in proc.stderr
        assert not out.exists()
        assert audit("snapshot", "prod", "-c", config_path, "-o", str(out), "--allow-partial").returncode == 0
    snap = snapshot.load(out)
    assert snap.sources[f"aws:{ACCOUNTS[1]}/{REGIONS[0]}"].status == "error"
    assert snap.sources[f"aws:{ACCOUNTS[0]}/{REGIONS[0]}"].status == "ok"
    assert {lb.account for lb in snap.resources.load_balancers} == {ACCOUNTS[0]}
