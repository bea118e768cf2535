"""The rule engine. ``api``: all a check imports; ``catalog``: the rules and their YAML; ``coverage``:
what was collected; ``evaluate``: runs the rules on one snapshot. Nothing is imported here, so a check
that imports ``auditor.engine.api`` loads nothing more."""
