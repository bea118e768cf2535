"""Baselines: accept today's findings, report only new ones. A finding is known by its rule id,
resource and fingerprint — never by its message, so rewording a message keeps the baseline valid."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from auditor.outcomes import Result
from auditor.errors import AuditError, read_text
from auditor.model.snapshot import write_atomic

VERSION = 1


def write(path: str | Path, results: list[Result]) -> None:
    findings = sorted({(f.rule_id, f.resource, f.fingerprint) for r in results for f in r.findings})
    data = {"schema_version": VERSION, "tool": "auditor",
            "findings": [{"rule_id": rule, "resource": resource, "fingerprint": fingerprint}
                         for rule, resource, fingerprint in findings]}
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def read(path: str | Path) -> set[tuple[str, str, str]]:
    text = read_text(path, "baseline file")
    try:
        data = json.loads(text)
        return {(f["rule_id"], f["resource"], f["fingerprint"]) for f in data["findings"]}
    except (json.JSONDecodeError, KeyError, TypeError):
        raise AuditError(f"{path}: not a baseline written by audit check --write-baseline") from None


def without_known(results: list[Result], known: set[tuple[str, str, str]]) -> list[Result]:
    return [replace(r, findings=[f for f in r.findings if (f.rule_id, f.resource, f.fingerprint) not in known])
            for r in results]
