"""Commands from audit.yaml: code, not data. An argv run with no shell, under a timeout, only with
--allow-commands; its stderr reaches the snapshot only through redaction."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from auditor.errors import AuditError
from auditor.model.snapshot import Redactor

DEFAULT_TIMEOUT = 30.0


class CommandError(AuditError):
    """A command that could not run, timed out or failed; the message is already redacted."""


@dataclass(frozen=True)
class HostFacts:
    """What a command may name about the instance it runs for."""

    instance_id: str = ""
    private_ip: str = ""


def expand(argv: list[str], facts: HostFacts) -> list[str]:
    return [a.replace("{instance_id}", facts.instance_id).replace("{private_ip}", facts.private_ip) for a in argv]


def per_instance(argv: list[str]) -> bool:
    """A command naming the instance runs once per matched instance."""
    return any("{instance_id}" in a or "{private_ip}" in a for a in argv)


def run(argv: list[str], what: str, redactor: Redactor, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Run ``argv`` and return its stdout; ``what`` names it in errors (e.g. "host web: nginx.command")."""
    shown = " ".join(argv)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)
    except FileNotFoundError:
        raise CommandError(f"{what}: command not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{what}: `{redactor.text(shown)}` did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise CommandError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
    if proc.returncode != 0:
        # stderr is free text that no allowlist can vouch for: it is kept only as a digest, which tells
        # two failures apart without showing either. Run the command by hand to read it.
        detail = f"stderr {redactor.value(proc.stderr.strip())}" if proc.stderr.strip() else "no stderr"
        raise CommandError(f"{what}: `{redactor.text(shown)}` exited {proc.returncode} ({detail})")
    return proc.stdout
