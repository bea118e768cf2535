"""Truth against real traffic: real nginx (Debian's) and real HTTP backends on loopback, one per slot.
For each switch kind, audit's verdict for a slot ("served" or a P101/P104/P105 finding) must match
what a real request gets when that slot is made live the way the deploy would make it live."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest

from auditor.model import snapshot
from auditor.engine import evaluate
from auditor.engine.catalog import builtin_catalog
from auditor.collect.host import nginx as nginx_collector

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
# The findings that say the ALB's health check would fail for a slot.
UNSERVED = {"P101", "P102", "P103", "P104", "P105", "P109"}


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range (32768 and up): the tests running beside
    this one bind port 0 and draw from that range, so one of them cannot take this port before the
    backend or nginx binds it (seen: "Address already in use")."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


HEALTH_PATH = "/health-check"


class Backend:
    """A slot's app: answers its health path (the app.health_path audit is told) with 200 and the
    slot's name, anything else with 404."""

    def __init__(self, slot: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = slot.encode() if self.path == HEALTH_PATH else b"not found"
                self.send_response(200 if self.path == HEALTH_PATH else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        # The port was free when chosen; a moment's holder (a connection closing) is waited out.
        deadline = time.monotonic() + 5
        while True:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Case:
    name: str
    server: str | None  # the nginx server block, with {LISTEN}, {BLUE}, {GREEN}, ...; None: no nginx
    include: str = ""  # the included switch file, with the same placeholders
    follows: bool = False  # the deploy rewrites the include to the live slot's port
    tg_port: str = "LISTEN"  # which port the target group sends traffic to
    hc_port: str | None = None  # an explicit health-check port; None: the traffic port
    hc_path: str = "/health-check"


PROXY = "listen {LISTEN}; location / { proxy_pass %s; }"
CASES = [
    Case("variable", "listen {LISTEN}; include switch.inc; location / { proxy_pass $service_url; }",
         "set $service_url http://127.0.0.1:{BLUE};", follows=True),
    Case("upstream-both", PROXY % "http://app"),
    Case("upstream-blue-only", PROXY % "http://app_blue"),
    Case("static-blue", PROXY % "http://127.0.0.1:{BLUE}"),
    Case("static-green", PROXY % "http://127.0.0.1:{GREEN}"),
    Case("variable-to-nothing", "listen {LISTEN}; include switch.inc; location / { proxy_pass $service_url; }",
         "set $service_url http://127.0.0.1:{NOTHING};"),
    Case("wrong-listen", "listen {OTHER}; location / { proxy_pass http://app; }"),
    Case("health-path-unrouted", "listen {LISTEN}; location /api/ { proxy_pass http://app; }"),
    Case("health-port-unserved", PROXY % "http://app", hc_port="NOTHING"),
    Case("health-port-served", PROXY % "http://app" + " } server { listen {OTHER}; location / { proxy_pass "
         "http://app; }", hc_port="OTHER"),
    Case("no-nginx-direct", None, tg_port="BLUE"),
    Case("no-nginx-health-path", None, tg_port="BLUE", hc_path="/api/health"),
]


class Nginx:
    def __init__(self, root: Path, conf: Path) -> None:
        self.root, self.conf = root, conf
        self.process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(root), "-e", str(root / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def reload(self) -> None:
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def request(port: int, path: str) -> str | None:
    """What the ALB's health check sees: the slot that answered 200, or None (error, refused, no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def verdicts(case: Case, nginx_facts, ports: dict[str, int], slots: dict[str, int]) -> dict[str, bool]:
    """audit's answer per slot: True when no finding says the slot's health check would fail."""
    health_check = {"path": case.hc_path, "port": str(ports[case.hc_port]) if case.hc_port else "traffic-port"}
    tg_port = ports[case.tg_port]
    # Without nginx the ALB reaches the containers directly, so they publish on every interface;
    # behind nginx they are bound to loopback, as the incident's prod does.
    bind = "127.0.0.1" if nginx_facts else None
    data = {
        "schema_version": 1, "environment": "oracle",
        "resources": {
            "load_balancers": [{"arn": "lb", "name": "web-alb", "security_groups": ["sg-alb"]}],
            "listeners": [{"arn": "l", "load_balancer_arn": "lb", "port": 80,
                           "default_actions": [{"type": "forward", "target_groups": [{"arn": "tg"}]}]}],
            "target_groups": [{"arn": "tg", "name": "web-tg", "port": tg_port, "health_check": health_check}],
            "target_health": [{"target_group_arn": "tg", "target_id": "i-1", "port": tg_port}],
            "instances": [{"id": "i-1", "private_ip": "10.0.0.5", "tags": {"Role": "web"}}],
            "hosts": [{"name": "web", "match": {"Role": "web"},
                       "nginx": msgspec.to_builtins(nginx_facts) if nginx_facts else None,
                       "app": {"health_path": HEALTH_PATH},
                       "docker": {"containers": [
                           {"name": f"app-{slot}", "service": f"app-{slot}",
                            "ports": [{"host_ip": bind, "host_port": port, "container_port": 3000}]}
                           for slot, port in slots.items()],
                           "slots": {slot: f"app-{slot}" for slot in slots}}}],
        },
    }
    result = evaluate.run(snapshot.from_data(data), ["oracle"], builtin_catalog())
    broken = [f for f in result.findings if f.rule_id in UNSERVED]
    return {slot: not any(f.slot in (slot, None) for f in broken) for slot in slots}


@pytest.fixture(scope="module")
def real_nginx() -> str:
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed; `make test` installs it with apt-get as root")
        pytest.skip("nginx is not installed")
    return NGINX


def render(text: str, values: dict[str, int]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_audit_agrees_with_real_traffic(real_nginx, tmp_path, case):
    ports = {"LISTEN": free_port(), "BLUE": free_port(), "GREEN": free_port(), "NOTHING": free_port(),
             "OTHER": free_port()}
    slots = {"blue": ports["BLUE"], "green": ports["GREEN"]}
    server = None
    facts = None
    if case.server is not None:
        (tmp_path / "tmp").mkdir()
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = tmp_path / "nginx.conf"
        conf.write_text(render(
            f"{user}daemon off; pid {tmp_path}/nginx.pid; events {{}}\n"
            f"http {{ access_log off; client_body_temp_path {tmp_path}/tmp; proxy_temp_path {tmp_path}/tmp;\n"
            f"  fastcgi_temp_path {tmp_path}/tmp; uwsgi_temp_path {tmp_path}/tmp; scgi_temp_path {tmp_path}/tmp;\n"
            "  upstream app { server 127.0.0.1:{BLUE}; server 127.0.0.1:{GREEN} backup; }\n"
            "  upstream app_blue { server 127.0.0.1:{BLUE}; }\n"
            f"  server {{ {case.server} }}\n}}\n", ports))
        (tmp_path / "switch.inc").write_text(render(case.include, ports) + "\n")
        facts = nginx_collector.parse_file(conf)
        server = Nginx(tmp_path, conf)
    audit_says = verdicts(case, facts, ports, slots)
    try:
        if server is not None:
            wait_for(ports["OTHER"] if "{OTHER}" in (case.server or "") else ports["LISTEN"])
        for slot, port in slots.items():
            # Make the slot live as the deploy would: only its app runs, and the switch points at it.
            if case.follows and server is not None:
                (tmp_path / "switch.inc").write_text(f"set $service_url http://127.0.0.1:{port};\n")
                server.reload()
            backend = Backend(slot, port)
            try:
                health_port = ports[case.hc_port] if case.hc_port else ports[case.tg_port]
                answered = request(health_port, case.hc_path)
            finally:
                backend.stop()
            assert (answered == slot) == audit_says[slot], (
                f"{case.name}: slot {slot}: the health check got {answered!r}, audit says served={audit_says[slot]}")
    finally:
        if server is not None:
            server.stop()
