"""Signals for the care team: rules as data (rules.yaml) and a pure evaluation of one patient's
history. A signal is a prompt for the care team to review, never a diagnosis or advice."""

from mappings.signals.evaluate import ACTIVE, RESOLVED, Evidence, Signal, evaluate
from mappings.signals.rules import RULE_IDS, Rule, RuleSet, default_rules, with_overrides
from mappings.signals.stored import (
    signal_from_json,
    signal_to_json,
    state_from_text,
    state_to_text,
)
from mappings.signals.window import (
    Window,
    closes_a_cycle,
    evaluate_window,
    plan_window,
    record_ref,
    record_time,
)

__all__ = [
    "ACTIVE",
    "RESOLVED",
    "RULE_IDS",
    "Evidence",
    "Rule",
    "RuleSet",
    "Signal",
    "Window",
    "closes_a_cycle",
    "default_rules",
    "evaluate",
    "evaluate_window",
    "plan_window",
    "record_ref",
    "record_time",
    "signal_from_json",
    "signal_to_json",
    "state_from_text",
    "state_to_text",
    "with_overrides",
]
