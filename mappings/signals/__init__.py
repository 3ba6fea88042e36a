"""Signals for the care team: rules as data (rules.yaml) and a pure evaluation of one patient's
history. A signal is a prompt for the care team to review, never a diagnosis or advice."""

from mappings.signals.evaluate import ACTIVE, RESOLVED, Evidence, Signal, evaluate
from mappings.signals.rules import RULE_IDS, Rule, RuleSet, default_rules, with_overrides

__all__ = [
    "ACTIVE",
    "RESOLVED",
    "RULE_IDS",
    "Evidence",
    "Rule",
    "RuleSet",
    "Signal",
    "default_rules",
    "evaluate",
    "with_overrides",
]
