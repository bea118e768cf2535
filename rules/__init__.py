"""The rule catalog: one YAML file per rule. Shipped inside the wheel as auditor.rules."""
