"""Nginx: real files (ours and the public corpus) and the real `nginx -T`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from auditor.collect.host import nginx
from auditor.model.snapshot import Listen, Redactor
from tests.conftest import ROOT, SHARED

FIXTURE = ROOT / "fixtures" / "nginx" / "nginx.conf"
CORPUS = sorted((SHARED / "corpus" / "nginx").glob("*.conf"))


def facts(config):
    """What the rules read, without the file names (which differ between a dump and the disk)."""
    return (
        [(tuple((l.address, l.port, l.ssl, l.http2, l.default_server) for l in s.listen), tuple(s.server_names),
          tuple((loc.modifier, loc.path, loc.proxy_pass, loc.return_code, loc.line) for loc in s.locations))
         for s in config.servers],
        [(u.name, [(x.address, x.backup) for x in u.servers]) for u in config.upstreams],
        [(v.name, v.value, v.line) for v in config.variables],
    )


@pytest.mark.parametrize("args,expected", [
    (["80"], Listen(port=80)),
    (["127.0.0.1:8080"], Listen(address="127.0.0.1", port=8080)),
    (["[::]:80"], Listen(address="::", port=80)),
    (["[::1]"], Listen(address="::1", port=80)),
    (["*:8000"], Listen(port=8000)),
    (["localhost"], Listen(address="localhost", port=80)),
    (["443", "ssl", "http2"], Listen(port=443, ssl=True, http2=True)),
    (["80", "default_server", "deferred"], Listen(port=80, default_server=True)),
    (["unix:/run/nginx.sock"], None),
])
def test_listen_in_every_form(args, expected):
    assert nginx.parse_listen(args) == expected


def test_fixture_config_with_includes_relative_to_the_config_directory():
    config = nginx.parse_file(FIXTURE)
    main, loopback, redirect = sorted(config.servers, key=lambda s: s.listen[0].port)
    assert [(l.address, l.port, l.default_server) for l in main.listen] == [(None, 80, True), ("::", 80, True)]
    assert [(loc.modifier, loc.path) for loc in main.locations] == [
        ("", "/"), ("=", "/health-check"), ("^~", "/static/"), ("~*", r"\.(css|js)$")]
    assert main.locations[0].proxy_pass == "$service_url"
    assert main.locations[1].return_code == 200
    assert main.locations[2].root == "/srv/www"
    (variable,) = config.variables
    assert (variable.name, variable.value, Path(variable.file).name, variable.line) == (
        "service_url", "http://127.0.0.1:3000", "service-url.inc", 1)
    assert [(x.address, x.backup) for x in config.upstreams[0].servers] == [("127.0.0.1:3000", False),
                                                                          ("127.0.0.1:4000", True)]
    assert (loopback.listen[0].address, loopback.locations[0].proxy_pass) == ("127.0.0.1", "http://app")
    assert (redirect.listen[0].http2, redirect.locations) == (True, [])
    assert Path(redirect.file).name == "redirect.conf"
    assert len(config.files) == 3


def test_header_values_outside_the_allowlist_are_redacted():
    config = nginx.parse_file(FIXTURE, Redactor(None))
    headers = next(s for s in config.servers if s.listen[0].port == 80).locations[0].headers
    assert headers == {"X-Forwarded-Proto": "$http_x_forwarded_proto", "Authorization": "<redacted>"}


def test_server_level_return_is_kept_as_a_location_free_answer():
    config = nginx.parse_file(FIXTURE)
    redirect = next(s for s in config.servers if s.listen[0].port == 8443)
    assert redirect.server_names == ["example.com", "www.example.com"]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_file_is_read_or_refused_clearly(path):
    try:
        config = nginx.parse_file(path)
    except nginx.NginxError as error:
        assert str(path) in str(error) or path.name in str(error)
        return
    assert config.files


def test_corpus_snippet_without_http_block_has_its_upstream_and_server():
    config = nginx.parse_file(SHARED / "corpus" / "nginx" / "06-awesome-compose-loadbalancer-minimal.conf")
    assert [u.name for u in config.upstreams] == ["loadbalancer"]
    assert config.servers[0].locations[0].proxy_pass == "http://loadbalancer"


def test_stream_servers_are_not_http_servers():
    assert nginx.parse_file(SHARED / "corpus" / "nginx" / "12-stream-udp-only-no-eol.conf").servers == []


def test_missing_include_is_recorded_not_fatal(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text("http { include missing.conf; include none/*.conf; include mime.types; server { listen 81; } }\n")
    config = nginx.parse_file(conf)
    # A glob that matches nothing: nginx starts and silently does less (N502).
    assert [(m.pattern, m.line) for m in config.missing_includes] == [("none/*.conf", 1)]
    # A plain include that is missing: nginx refuses to start (N500). Stock files are never missing.
    assert [(r.message, r.line) for r in config.refusals] == [
        ('open() "missing.conf" failed (No such file or directory)', 1)]
    assert config.servers[0].listen[0].port == 81


def test_an_include_loop_is_one_clear_error(tmp_path):
    conf = tmp_path / "self.conf"
    conf.write_text("http { include self.conf; }\n")
    with pytest.raises(nginx.NginxError, match="include loop") as error:
        nginx.parse_file(conf)
    assert "self.conf:" in str(error.value)


# What nginx refuses to load (N500), each beside a near miss it loads: (config, refusal, line). The
# configs are whole (events + http) so the real `nginx -t` can confirm both below.
REFUSED = [
    ("events {}\nhttp {\n server {\n  listen 8080;\n  location / { return 204; }\n }\n",
     "unexpected end of file", 6),
    ("events {}\nhttp {\n server {\n  listen 8080;\n }\n}\n}\n", 'unexpected "}"', 7),
    ("events {}\nhttp {\n server {\n  listen 8080\n  server_name a.example;\n  location / { return 204; }\n }\n}\n",
     'invalid parameter "server_name" in "listen"', 4),
    ("events {}\nhttp {\n proxy_pass http://127.0.0.1:3000;\n server { listen 8080; }\n}\n",
     '"proxy_pass" directive is not allowed here', 3),
    ("events {}\nhttp {\n server {\n  listen 8080;\n  location / { proxy_pass http://127.0.0.1:3000 http://x; }\n }\n}\n",
     'invalid number of arguments in "proxy_pass" directive', 5),
    ("events {}\nhttp {\n include conf.d/app.conf;\n}\n", 'open() "conf.d/app.conf" failed', 3),
]
LOADED = [
    "events {}\nhttp {\n server {\n  listen 8080;\n  location / { return 204; }\n }\n}\n",
    "events {}\nhttp {\n server {\n  listen 8080 default_server reuseport;\n  server_name a.example;\n }\n}\n",
    "events {}\nhttp {\n server {\n  listen 8080;\n  location / { proxy_pass http://127.0.0.1:3000; }\n }\n}\n",
    "events {}\nhttp {\n include mime.types;\n include conf.d/*.conf;\n server { listen 8080; }\n}\n",
    # a directive of a module crossplane does not know is not judged
    "events {}\nhttp {\n server {\n  listen 8080;\n  location / { return 204; }\n }\n}\n",
]


@pytest.mark.parametrize("text,refusal,line", REFUSED, ids=[r[1][:30] for r in REFUSED])
def test_what_nginx_refuses_is_recorded_at_its_line(tmp_path, text, refusal, line):
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    config = nginx.parse_file(conf)
    assert [(refusal in r.message, r.line) for r in config.refusals][:1] == [(True, line)], config.refusals


@pytest.mark.parametrize("text", LOADED)
def test_near_misses_nginx_loads_are_not_refused(tmp_path, text):
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    assert nginx.parse_file(conf).refusals == []


def test_a_site_file_is_judged_inside_http(tmp_path):
    site = tmp_path / "site.conf"
    site.write_text("server {\n listen 8080;\n location / { proxy_pass http://127.0.0.1:3000; }\n}\n")
    assert nginx.parse_file(site).refusals == []
    site.write_text("server {\n listen 8080;\n}\nlocation / { return 204; }\n")
    assert [r.message for r in nginx.parse_file(site).refusals] == ['"location" directive is not allowed here']


def _nginx_t(binary: str, conf: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    args = [binary, "-t", "-c", str(conf), "-e", "stderr", "-g", f"pid {tmp_path}/nginx.pid;"]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("text,refusal,line", REFUSED, ids=[r[1][:30] for r in REFUSED])
def test_real_nginx_refuses_what_audit_calls_n500(real_nginx, tmp_path, text, refusal, line):
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    proc = _nginx_t(real_nginx, conf, tmp_path)
    assert proc.returncode != 0, proc.stderr
    # nginx names the line where it noticed (the `;` that ends a run-on `listen`, the line after the
    # last one at end of file); audit names the directive's own line.
    (where,) = re.findall(r"nginx\.conf:(\d+)", proc.stderr)
    assert 0 <= int(where) - line <= 1, proc.stderr


@pytest.mark.parametrize("text", LOADED)
def test_real_nginx_loads_the_near_misses(real_nginx, tmp_path, text):
    (tmp_path / "conf.d").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text.replace("include mime.types;", "include /etc/nginx/mime.types;"))
    proc = _nginx_t(real_nginx, conf, tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_dump_without_headers_is_refused():
    with pytest.raises(nginx.NginxError, match="no '# configuration file"):
        nginx.parse_dump("server { listen 80; }", "host web: nginx.command")


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


@pytest.fixture
def real_nginx() -> str:
    binary = _nginx_binary()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is not installed; `make test` installs it with apt-get as root")
        pytest.skip("nginx is not installed (make test installs Debian's nginx when run as root)")
    return binary


def _dump(binary: str, conf: Path, tmp_path: Path) -> str:
    args = [binary, "-T", "-c", str(conf)]
    if os.geteuid() != 0:  # non-root nginx needs its own pid and error log (see shared NOTES)
        args += ["-e", "stderr", "-g", f"pid {tmp_path}/nginx.pid;"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_real_nginx_dump_reads_the_same_as_the_files(real_nginx, tmp_path):
    dump = _dump(real_nginx, FIXTURE, tmp_path)
    from_dump = nginx.parse_dump(dump)
    from_files = nginx.parse_file(FIXTURE)
    assert facts(from_dump) == facts(from_files)
    assert from_dump.variables[0].file.endswith("service-url.inc")
    assert [Path(s.file).name for s in from_dump.servers] == ["redirect.conf", "nginx.conf", "nginx.conf"]


def test_real_nginx_dump_of_an_included_snippet_layout(real_nginx, tmp_path):
    (tmp_path / "sites").mkdir()
    (tmp_path / "nginx.conf").write_text("events {}\nhttp { include sites/*.conf; }\n")
    (tmp_path / "sites" / "a.conf").write_text("server { listen 8081; location / { proxy_pass http://127.0.0.1:3000; } }\n")
    (tmp_path / "sites" / "b.conf").write_text("server { listen 8082; location / { return 204; } }\n")
    config = nginx.parse_dump(_dump(real_nginx, tmp_path / "nginx.conf", tmp_path))
    assert [s.listen[0].port for s in config.servers] == [8081, 8082]
    assert [Path(s.file).name for s in config.servers] == ["a.conf", "b.conf"]


def test_regex_captures_define_variables_and_internal_is_recorded(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "http {\n"
        " server {\n"
        "  listen 80;\n"
        "  server_name ~^(?<tenant>[a-z]+)\\.example\\.com$;\n"
        "  location ~ /proxy/(?P<target>.*)$ { proxy_pass http://$target; }\n"
        "  location /auth { internal; proxy_pass http://$http_x_backend; }\n"
        " }\n"
        "}\n")
    config = nginx.parse_file(conf)
    assert set(config.maps) >= {"tenant", "target"}
    proxy, auth = config.servers[0].locations
    assert (proxy.captures, proxy.internal, auth.internal) == (["target"], False, True)


def test_add_header_inheritance_follows_the_enclosing_location(tmp_path):
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "http {\n server {\n  listen 80;\n  add_header X-Frame-Options DENY;\n"
        "  location /files/ {\n   add_header X-Frame-Options DENY;\n   add_header Cache-Control private;\n"
        "   location ~ \\.pdf$ { add_header Content-Disposition attachment; }\n  }\n }\n}\n")
    files, pdf = nginx.parse_file(conf).servers[0].locations
    assert files.inherited_add_headers == ["X-Frame-Options"]  # keeps the server's header: nothing dropped
    assert pdf.inherited_add_headers == ["X-Frame-Options", "Cache-Control"]  # what the nested one drops


REALWORLD = SHARED / "realworld"


@pytest.mark.parametrize("relative,unknown", [
    # uwsgi_server is written at container start; wsgi_params is copied into the image: not in the repository
    ("DefectDojo__django-DefectDojo/nginx/nginx.conf", 'include /run/defectdojo/uwsgi_server is outside'),
    # envsubst and sed templates: what nginx loads is their rendered form
    ("openwisp__docker-openwisp/images/openwisp_nginx/nginx.template.conf", "${NGINX_WORKER_PROCESSES}"),
    ("OpenVidu__openvidu/openvidu-server/docker/openvidu-proxy/nginx.conf", "{worker_connections}"),
])
def test_what_audit_cannot_see_is_unknown_never_refused(relative, unknown):
    config = nginx.parse_file(REALWORLD / relative)
    assert config.refusals == [] and config.missing_includes == []
    assert unknown in config.unreadable[0].message


def test_a_fragment_included_elsewhere_is_not_judged_for_context():
    # ragflow's proxy.conf holds proxy_* lines for a location that includes it
    assert nginx.parse_file(REALWORLD / "infiniflow__ragflow/docker/nginx/proxy.conf").refusals == []


def test_paths_through_an_unreadable_include_are_unknown():
    from tests.conftest import estate, host, run

    data = estate("incident-prod")
    host(data)["nginx"]["unreadable"] = [{"message": "include /run/x is outside the repository: its contents are "
                                                     "unknown", "file": "nginx.conf", "line": 7}]
    result = run(data)
    assert not [f for f in result.findings if f.rule_id.startswith("P") or f.rule_id == "N500"]
    assert {s.rule_id for s in result.skipped if "outside the repository" in s.reason} >= {"P101", "P104"}


def test_absolute_includes_resolve_beside_the_main_file_never_on_this_machine(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "site.conf").write_text("server { listen 8081; }\n")
    main = tmp_path / "nginx.conf"
    main.write_text("events {}\nhttp {\n include /etc/nginx/conf.d/*.conf;\n include /etc/nginx/sites-enabled/*;\n"
                    " include /opt/extra.conf;\n}\n")
    config = nginx.parse_file(main)
    # /etc/nginx/conf.d is the repository's conf.d beside nginx.conf; whatever this machine has in
    # /etc/nginx/sites-enabled is never read: unknown, as /opt is
    assert [s.listen[0].port for s in config.servers] == [8081]
    assert config.missing_includes == [] and config.refusals == []
    assert [u.message.split(" (")[0].split(":")[0] for u in config.unreadable] == [
        "include /etc/nginx/sites-enabled/* is not beside " + str(main),
        "include /opt/extra.conf is outside the repository"]


def test_a_declared_prefix_makes_what_is_not_beside_the_main_file_missing(tmp_path):
    main = tmp_path / "nginx.conf"
    main.write_text("events {}\nhttp {\n include /srv/nginx/sites/*.conf;\n include /srv/nginx/params;\n}\n")
    config = nginx.parse_file(main, prefix="/srv/nginx")
    assert [m.pattern for m in config.missing_includes] == ["/srv/nginx/sites/*.conf"]
    assert [r.message for r in config.refusals] == ['open() "/srv/nginx/params" failed (No such file or directory)']
    assert config.unreadable == []


def test_stream_listen_parameters_are_not_judged_as_http_ones():
    # `listen 53 udp` is valid in a stream server (corpus 12-stream-udp-only-no-eol.conf)
    config = nginx.parse_file(SHARED / "corpus" / "nginx" / "12-stream-udp-only-no-eol.conf")
    assert config.refusals == []
