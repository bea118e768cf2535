"""Real Terraform against moto: the estate in terraform/ applied once per session and planned once per
case, in a background thread from the end of collection (apply takes about 80 s, most of it the provider
waiting for the load balancer; each plan about 13 s of the provider's CPU), while the rest of the suite
runs; the tests that read those plans run last.

Terraform and the AWS provider come from this machine's filesystem provider mirror, never the network.
Without them the tests that run terraform skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from dataclasses import dataclass

from tests.plan.cases import ASG_CASE, CASE, MODULE_CASE, Case

HERE = Path(__file__).resolve().parent
ESTATE = HERE / "estate"
PLANS = HERE / "plans"
MODULES = HERE.parent.parent.parent / "shared" / "terraform" / "modules"  # terraform-aws-modules, used from there


@dataclass(frozen=True)
class Source:
    """One estate the plan tests apply: its Terraform, the audit.yaml that describes its hosts, its cases
    and where their committed plans live."""

    name: str
    terraform: Path
    config: Path
    cases: dict[str, Case]
    plans: Path


RESOURCES = Source("resources", HERE / "terraform", ESTATE / "audit.yaml", CASE, PLANS)
# terraform-aws-modules/alb v9.17.0: dynamic blocks, module outputs, name_prefix (issue #27).
MODULE = Source("modules", HERE / "modules", HERE / "modules" / "estate" / "audit.yaml", MODULE_CASE,
                HERE / "modules" / "plans")
# terraform-aws-modules/autoscaling v8.3.1 behind the ALB module: registrations of a group's instances.
ASG = Source("asg", HERE / "asg", HERE / "asg" / "estate" / "audit.yaml", ASG_CASE, HERE / "asg" / "plans")
SOURCES = (RESOURCES, MODULE, ASG)
FIXTURES = {RESOURCES.name: "terraform_estate", MODULE.name: "module_estate", ASG.name: "asg_estate"}
MIRROR_CANDIDATES = ("/opt/tf-plugins", "/usr/share/terraform/plugins", "~/.terraform.d/plugins",
                     "~/.local/share/terraform/plugins")
PROVIDER = "registry.terraform.io/hashicorp/aws"


def provider_mirror() -> Path | None:
    """The directory that holds registry.terraform.io/hashicorp/aws/... (TF_PLUGIN_MIRROR first)."""
    for candidate in filter(None, [os.environ.get("TF_PLUGIN_MIRROR"), *MIRROR_CANDIDATES]):
        path = Path(candidate).expanduser()
        if (path / PROVIDER).is_dir():
            return path
    return None


def missing_terraform() -> str | None:
    if shutil.which("terraform") is None:
        return "terraform is not installed"
    if provider_mirror() is None:
        return f"no filesystem provider mirror holding {PROVIDER} (set TF_PLUGIN_MIRROR)"
    if not (MODULES / "alb" / "main.tf").is_file():
        return f"{MODULES}/alb is missing: the shared terraform-aws-modules are read from beside the checkout"
    return None


class Estate:
    """The applied estate: a working directory, its moto endpoint, and the snapshot audit took of it."""

    def __init__(self, root: Path, source: Source = RESOURCES) -> None:
        self.root = root
        self.source = source
        self.work = root / "terraform"
        self.snapshot = root / "snapshot.json"
        self.endpoint = ""
        self.plans: dict[str, Path] = {}
        self.error: str | None = None
        self._server = None

    def env(self) -> dict[str, str]:
        rc = self.root / "terraformrc"
        rc.write_text('provider_installation {\n  filesystem_mirror {\n    path = "%s"\n'
                      '    include = ["registry.terraform.io/*/*"]\n  }\n  direct {\n'
                      '    exclude = ["registry.terraform.io/*/*"]\n  }\n}\n' % provider_mirror())
        return {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

    def terraform(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["terraform", *args, "-no-color"], cwd=self.work, env=self.env(), text=True,
                              capture_output=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"terraform {args[0]} failed: {done.stderr.strip()[-2000:]}")
        return done

    def build(self) -> None:
        from tests.collect.conftest import _free_port

        try:
            # moto's state is global to its process: a server of its own, so that the other tests'
            # resets of their moto never touch this estate.
            port = _free_port()
            self._server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.endpoint = f"http://127.0.0.1:{port}"
            _wait_for(self.endpoint)
            self.work.mkdir(parents=True)
            main = (self.source.terraform / "main.tf").read_text().replace("__MODULES__", str(MODULES))
            (self.work / "main.tf").write_text(main)
            self.terraform("init", "-input=false")
            self.terraform("apply", "-auto-approve", "-input=false", f"-var=endpoint={self.endpoint}")
            done = subprocess.run([sys.executable, "-m", "auditor", "snapshot", "prod", "-c", str(self.source.config),
                                   "-o", str(self.snapshot), "--quiet"], env=self.env(), text=True,
                                  capture_output=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"audit snapshot failed: {done.stderr.strip()}")
            for name, case in self.source.cases.items():
                self.plans[name] = self.plan(name, case.variables)
        except Exception as exc:  # reported by the fixture, in the test that needs the estate
            self.error = f"{type(exc).__name__}: {exc}"
        (self.root / "ready.json").write_text(json.dumps({
            "error": self.error, "endpoint": self.endpoint, "plans": {k: str(v) for k, v in self.plans.items()}}))

    @classmethod
    def wait(cls, root: Path, source: Source, seconds: float = 900) -> Estate:
        """The estate another process is building in ``root``, once it is built (or failed)."""
        ready = root / "ready.json"
        deadline = time.monotonic() + seconds
        while not ready.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the terraform estate in {root} was not built within {seconds:g} s")
            time.sleep(0.5)
        facts = json.loads(ready.read_text())
        estate = cls(root, source)
        estate.error, estate.endpoint = facts["error"], facts["endpoint"]
        estate.plans = {k: Path(v) for k, v in facts["plans"].items()}
        return estate

    def plan(self, name: str, variables: dict[str, str]) -> Path:
        """`terraform plan` with the case's variables, then `terraform show -json`: the plan file audit reads."""
        out = self.root / f"{name}.tfplan"
        flags = [f"-var={k}={v}" for k, v in variables.items()]
        self.terraform("plan", "-input=false", f"-out={out}", f"-var=endpoint={self.endpoint}", *flags)
        path = self.root / f"{name}.json"
        path.write_text(self.terraform("show", "-json", str(out)).stdout)
        return path

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            self._server.wait(timeout=10)


def _wait_for(endpoint: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto did not start on {endpoint}") from None
            time.sleep(0.2)


def _estate_dir(source: Source) -> str:
    """Where the estate of ``source`` is being built, for every test process."""
    return f"AUDIT_TERRAFORM_ESTATE_{source.name.upper()}"


def start_estate(config: pytest.Config) -> None:
    """Called by tests/conftest.py in the process that runs the session (the xdist controller, or the
    only process): build each estate in a background thread (a moto server each), into a directory
    every worker can read."""
    import tempfile

    if missing_terraform() or not _runs_plan_tests(config):
        return
    estates = []
    for source in SOURCES:
        root = Path(tempfile.mkdtemp(prefix=f"audit-terraform-{source.name}-"))
        os.environ[_estate_dir(source)] = str(root)  # xdist workers start after configure and inherit it
        estate = Estate(root, source)
        threading.Thread(target=estate.build, name=f"terraform-{source.name}", daemon=True).start()
        estates.append(estate)
    config.stash[_ESTATES] = estates


def stop_estate(config: pytest.Config) -> None:
    for estate in config.stash.get(_ESTATES, []):
        estate.stop()
        shutil.rmtree(estate.root, ignore_errors=True)


def _runs_plan_tests(config: pytest.Config) -> bool:
    args = [Path(a.split("::")[0]).resolve() for a in config.args if not a.startswith("-")] or [HERE.parent]
    return any(a == HERE or HERE in a.parents or a in HERE.parents for a in args)


_ESTATES = pytest.StashKey[list]()


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that wait for a terraform estate run last, so that it is built while the others run."""
    items.sort(key=lambda item: bool(set(FIXTURES.values()) & set(getattr(item, "fixturenames", ()))))


def _estate(source: Source) -> Estate:
    why = missing_terraform()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}: CI must run the plan gate against real terraform")
        pytest.skip(why)
    if _estate_dir(source) not in os.environ:  # a run that did not name tests/plan (e.g. --lf): build it now
        import tempfile

        estate = Estate(Path(tempfile.mkdtemp(prefix=f"audit-terraform-{source.name}-")), source)
        estate.build()
    else:
        estate = Estate.wait(Path(os.environ[_estate_dir(source)]), source)
    if estate.error:
        pytest.fail(f"the terraform estate {source.name} could not be built: {estate.error}")
    return estate


@pytest.fixture(scope="session")
def terraform_estate() -> Estate:
    return _estate(RESOURCES)


@pytest.fixture(scope="session")
def module_estate() -> Estate:
    return _estate(MODULE)


@pytest.fixture(scope="session")
def asg_estate() -> Estate:
    return _estate(ASG)


def plan_summary(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Each changing resource's address and actions: what a committed plan and a fresh one must share."""
    data = json.loads(path.read_text())
    return sorted((rc["address"], tuple(rc["change"]["actions"])) for rc in data.get("resource_changes", [])
                  if rc["change"]["actions"] != ["no-op"])
