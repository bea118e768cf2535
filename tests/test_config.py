"""audit.yaml: the whole contract loads; every mistake is one line naming file, key and expectation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from auditor import config
from auditor.errors import ConfigError

FULL = """
version: 1
environments:
  dev:
    tokens: [dev, development]
    aws:
      region: ap-northeast-2
      profile: dev
      accounts: [{role_arn: "arn:aws:iam::123456789012:role/audit-read", regions: [ap-northeast-2]}]
      scope: {tags: {Environment: dev}}
    hosts:
      - name: web
        match: {tags: {Role: web}}
        nginx:  {path: envs/dev/nginx/nginx.conf}
        docker:
          compose: [envs/dev/docker-compose.yml]
          slots: {blue: {service: app-blue}, green: {service: app-green}}
          live: blue
          switch: {kind: variable}
        app: {health_path: /health-check, keepalive_timeout: 5}
      - name: api
        match: {tags: {Role: api}}
        nginx: {command: "ssh {private_ip} sudo nginx -T"}
        docker:
          inspect: envs/dev/inspect.json
          slots: {blue: {service: api-blue}, green: {service: api-green}}
          switch: {kind: alb, target_groups: {blue: api-blue-tg, green: api-green-tg}}
diff:
  match: [{resource_type: target_group, a: legacy-web-tg, b: web-prod-tg}]
  expected:
    - {path: "load_balancers[*].scheme", reason: "dev ALB is internal"}
  ignore: ["*.tags.CostCenter"]
rules:
  disable: [A204]
  severity: {T303: low}
  options: {S401: {ports: [22, 3389]}, T306: {drain_budget: 120}}
  paths: [audit-rules/]
suppressions:
  - {rule: S402, resource: "security_group:web-*-app", reason: "temporary, ticket OPS-12", expires: 2027-01-31}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "audit.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_design_example_loads_and_resolves_paths_against_the_config_directory(tmp_path):
    cfg = config.load(write(tmp_path, FULL))
    web = cfg.environments["dev"].hosts[0]
    assert web.nginx.path == tmp_path / "envs/dev/nginx/nginx.conf"
    assert web.docker.compose == [tmp_path / "envs/dev/docker-compose.yml"]
    assert web.docker.slots["green"].service == "app-green"
    assert cfg.environments["dev"].hosts[1].nginx.command == ["ssh", "{private_ip}", "sudo", "nginx", "-T"]
    assert cfg.rules.paths == [tmp_path / "audit-rules"]
    assert str(cfg.suppressions[0].expires) == "2027-01-31"
    assert config.tokens_for(cfg, "dev") == ["dev", "development"]
    assert config.tokens_for(cfg, "prod") == ["prod"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("version: 1\nenvironments: {dev: {hostz: []}}\n", "environments.dev.hostz: unknown key"),
        ("version: 2\nenvironments: {dev: {}}\n", "version: expected 1"),
        ("environments: {dev: {}}\n", "version: required key is missing"),
        ("version: 1\nenvironments: {dev: {hosts: [{name: web, match: {tags: {Role: web}}, "
         "docker: {compose: [a.yml], slots: {blue: {service: b}}, live: green}}]}}\n",
         "environments.dev.hosts[0].docker: live slot 'green' is not one of the slots ['blue']"),
        ("version: 1\nenvironments: {dev: {hosts: [{name: web, match: {tags: {Role: web}}, "
         "nginx: {path: a, command: [b]}}]}}\n", "environments.dev.hosts[0].nginx: give exactly one of path, command or service"),
        ("version: 1\nenvironments: {dev: {hosts: [{name: web, match: {tags: {Role: web}}, "
         "docker: {compose: [a.yml], switch: {kind: magic}}}]}}\n",
         "environments.dev.hosts[0].docker.switch.kind: expected 'variable', 'upstream', 'rewrite' or 'alb'"),
        ("version: 1\nenvironments: {dev: {hosts: 5}}\n", "environments.dev.hosts: expected a list, got 5"),
        ("version: 1\nenvironments: {}\n", "environments:"),
        ("version: 1\nenvironments: {dev: {}}\nsuppressions: [{rule: S402}]\n", "suppressions[0].reason: required"),
        ("- a\n- b\n", "expected a mapping at the top level"),
        # A mapping's key is named, not only its position: the environment, the tag, the service.
        ("version: 1\nenvironments: {dev: {}, prod: {hosts: [{name: web, match: {tags: {Role: web}}, "
         "nginx: {path: a, pathx: b}}]}}\n", "environments.prod.hosts[0].nginx.pathx: unknown key"),
        ("version: 1\nenvironments: {dev: {hosts: [{name: web, match: {tags: {Tier: 2, Role: [web]}}}]}}\n",
         "environments.dev.hosts[0].match.tags.Role: expected text, got ['web']"),
        ("version: 1\nenvironments: {dev: {hosts: [{name: web, match: {tags: {Role: web}}, "
         "docker: {compose: [a.yml], services: {web: {port: 80}, app: {port: 0}}}}]}}\n",
         "environments.dev.hosts[0].docker.services.app.port: expected an integer >= 1, got 0"),
        ("version: 1\nbase_dir: /etc\nenvironments: {dev: {}}\n", "base_dir: unknown key"),
        ("version: 1\nenvironments: {dev: {}}\nsuppressions: [{rule: S401, reason: x, expires: soon}]\n",
         "suppressions[0].expires: expected a date like 2027-01-31, got 'soon'"),
    ],
)
def test_mistakes_are_one_line_naming_file_key_and_expectation(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        config.load(path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_file_empty_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="config file is empty"):
        config.load(write(tmp_path, ""))
    with pytest.raises(ConfigError, match=r"\.yaml:2: invalid YAML"):
        config.load(write(tmp_path, "version: 1\nenvironments: {dev: [}\n"))


def test_unknown_environment_names_the_known_ones(tmp_path):
    cfg = config.load(write(tmp_path, FULL))
    with pytest.raises(ConfigError, match="unknown environment 'qa'.*defines: dev"):
        cfg.environment("qa")
