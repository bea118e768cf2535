"""Truth against real traffic: real nginx (Debian's) and real HTTP backends on loopback, one per slot.
For each switch kind, audit's verdict for a slot ("served" or a P101/P104/P105 finding) must match
what a real request gets when that slot is made live the way the deploy would make it live."""

from __future__ import annotations

import os
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

import pytest

from auditor import engine, snapshot
from auditor.collect import nginx as nginx_collector

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
UNSERVED = {"P101", "P104", "P105"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Backend:
    """A slot's app: answers every path with 200 and its slot's name."""

    def __init__(self, slot: str, port: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = slot.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Case:
    name: str
    server: str  # the nginx server block, with {LISTEN}, {BLUE}, {GREEN}
    include: str = ""  # the included switch file, with the same placeholders
    switch: str | None = None  # declared kind; "variable" cases rewrite the include per slot
    follows: bool = False  # the deploy rewrites the include to the live slot's port


CASES = [
    Case("variable", "listen {LISTEN}; include switch.inc; location / { proxy_pass $service_url; }",
         "set $service_url http://127.0.0.1:{BLUE};", follows=True),
    Case("upstream-both", "listen {LISTEN}; location / { proxy_pass http://app; }",
         "", ),
    Case("upstream-blue-only", "listen {LISTEN}; location / { proxy_pass http://app_blue; }"),
    Case("static", "listen {LISTEN}; location / { proxy_pass http://127.0.0.1:{BLUE}; }"),
    Case("variable-to-nothing", "listen {LISTEN}; include switch.inc; location / { proxy_pass $service_url; }",
         "set $service_url http://127.0.0.1:{NOTHING};", follows=False),
    Case("wrong-listen", "listen {OTHER}; location / { proxy_pass http://app; }"),
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


def request(port: int) -> str | None:
    """The slot that answered a real request through nginx, or None for an error or no answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health-check", timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def verdicts(nginx_facts, ports: dict[str, int], tg_port: int) -> dict[str, bool]:
    """audit's answer per slot: True when no unserved-path finding names it."""
    data = {
        "schema_version": 1, "environment": "oracle",
        "resources": {
            "load_balancers": [{"arn": "lb", "name": "web-alb", "security_groups": ["sg-alb"]}],
            "listeners": [{"arn": "l", "load_balancer_arn": "lb", "port": 80,
                           "default_actions": [{"type": "forward", "target_groups": [{"arn": "tg"}]}]}],
            "target_groups": [{"arn": "tg", "name": "web-tg", "port": tg_port, "health_check": {"path": "/health-check"}}],
            "target_health": [{"target_group_arn": "tg", "target_id": "i-1", "port": tg_port}],
            "instances": [{"id": "i-1", "private_ip": "10.0.0.5", "tags": {"Role": "web"}}],
            "hosts": [{"name": "web", "match": {"Role": "web"}, "nginx": nginx_facts.model_dump(),
                       "docker": {"containers": [
                           {"name": f"app-{slot}", "service": f"app-{slot}",
                            "ports": [{"host_ip": "127.0.0.1", "host_port": port, "container_port": 3000}]}
                           for slot, port in ports.items()],
                           "slots": {slot: f"app-{slot}" for slot in ports}}}],
        },
    }
    result = engine.run(snapshot.from_data(data), ["oracle"], engine.load_catalog())
    broken = [f for f in result.findings if f.rule_id in UNSERVED]
    return {slot: not any(f.slot in (slot, None) for f in broken) for slot in ports}


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
    for sub in ("logs", "tmp"):
        (tmp_path / sub).mkdir()
    user = "" if os.geteuid() != 0 else "user root;\n"
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(
        f"{user}daemon off; pid {tmp_path}/nginx.pid; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {tmp_path}/tmp; proxy_temp_path {tmp_path}/tmp;\n"
        "  fastcgi_temp_path {tmp}/tmp; uwsgi_temp_path {tmp}/tmp; scgi_temp_path {tmp}/tmp;\n"
        "  upstream app { server 127.0.0.1:{BLUE}; server 127.0.0.1:{GREEN} backup; }\n"
        "  upstream app_blue { server 127.0.0.1:{BLUE}; }\n"
        f"  server {{ {case.server} }}\n}}\n", ports).replace("{tmp}", str(tmp_path)))
    (tmp_path / "switch.inc").write_text(render(case.include, ports) + "\n")
    audit_says = verdicts(nginx_collector.parse_file(conf), slots, ports["LISTEN"])

    server = Nginx(tmp_path, conf)
    try:
        listen = ports["OTHER"] if case.name == "wrong-listen" else ports["LISTEN"]
        wait_for(listen)
        for slot, port in slots.items():
            # Make the slot live as the deploy would: only its app runs, and the switch points at it.
            if case.follows:
                (tmp_path / "switch.inc").write_text(f"set $service_url http://127.0.0.1:{port};\n")
                server.reload()
            backend = Backend(slot, port)
            try:
                answered = request(ports["LISTEN"])
            finally:
                backend.stop()
            assert (answered == slot) == audit_says[slot], (
                f"{case.name}: slot {slot}: real traffic got {answered!r}, audit says served={audit_says[slot]}")
    finally:
        server.stop()
