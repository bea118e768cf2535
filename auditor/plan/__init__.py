"""Planned changes (`gate --plan`): read a Terraform/OpenTofu JSON plan (read), turn its resources into
the snapshot's models (convert), overlay them on an environment's snapshot (overlay), and say what the
plan does to the findings and paths (review)."""

from auditor.plan.overlay import Planned, apply
from auditor.plan.read import PlanError, load
from auditor.plan.review import review

__all__ = ["PlanError", "Planned", "apply", "load", "review"]
