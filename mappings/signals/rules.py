"""The signal rules as data: mappings/signals/rules.yaml, with a clinic's overrides merged in."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache, cached_property
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

from mappings.errors import CodeTableError

RULE_IDS: tuple[str, ...] = (
    "danger_sign",
    "worsening",
    "infusion_reaction",
    "flare_up",
    "wear_off",
)
SEVERITIES: tuple[str, ...] = ("high", "moderate", "low")  # DetectedIssue.severity
# What a clinic may change; title, text and source stay with the rule they describe.
OVERRIDABLE: frozenset[str] = frozenset({"enabled", "severity", "threshold"})


@dataclass(frozen=True)
class Rule:
    """One rule: what it looks for, how loud it is, and where its default threshold comes from."""

    id: str
    title: str
    text: str
    severity: str
    alarm: bool  # False: information for review, not an alarm
    window: str
    threshold: Mapping[str, Any]
    source: str
    enabled: bool = True

    def param(self, name: str) -> Any:
        """One threshold value (KeyError names the rule when absent: a bug in rules.yaml)."""
        try:
            return self.threshold[name]
        except KeyError:
            raise KeyError(f"rule {self.id} has no threshold {name}") from None


@dataclass(frozen=True)
class RuleSet:
    """All rules by id, in RULE_IDS order."""

    rules: Mapping[str, Rule]

    def get(self, rule_id: str) -> Rule:
        """The rule with this id."""
        return self.rules[rule_id]

    def enabled(self) -> tuple[Rule, ...]:
        """The rules that run."""
        return tuple(r for r in self.rules.values() if r.enabled)

    def without(self, rule_ids: Iterable[str]) -> RuleSet:
        """The same rules with these ones switched off."""
        off = set(rule_ids)
        return RuleSet(
            {rid: replace(r, enabled=False) if rid in off else r for rid, r in self.rules.items()}
        )

    def fingerprint(self) -> str:
        """A hash of what decides the episodes (which rules run, their thresholds): stored
        signals evaluated under another fingerprint are stale (severity too: signals carry it)."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        decisive = {
            rid: [r.enabled, r.severity, dict(r.threshold)] for rid, r in self.rules.items()
        }
        text = json.dumps(decisive, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _parse_rule(rule_id: str, raw: Any) -> Rule:
    where = f"rules.yaml {rule_id}"
    if not isinstance(raw, dict):
        raise CodeTableError(f"{where}: must be a mapping")
    for name in ("title", "text", "severity", "window", "source"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise CodeTableError(f"{where}: missing or empty {name}")
    if raw["severity"] not in SEVERITIES:
        raise CodeTableError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
    threshold = raw.get("threshold")
    if not isinstance(threshold, dict) or not isinstance(raw.get("alarm"), bool):
        raise CodeTableError(f"{where}: needs a threshold mapping and alarm true|false")
    return Rule(
        id=rule_id,
        title=raw["title"].strip(),
        text=" ".join(raw["text"].split()),
        severity=raw["severity"],
        alarm=raw["alarm"],
        window=raw["window"].strip(),
        threshold=MappingProxyType(dict(threshold)),
        source=" ".join(raw["source"].split()),
    )


@cache
def default_rules() -> RuleSet:
    """The rules as shipped (loaded once)."""
    text = resources.files("mappings.signals").joinpath("rules.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict) or set(raw) != set(RULE_IDS):
        raise CodeTableError(f"rules.yaml must define exactly {', '.join(RULE_IDS)}")
    return RuleSet({rid: _parse_rule(rid, raw[rid]) for rid in RULE_IDS})


def _same_kind(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, type(default))


def with_overrides(overrides: Mapping[str, Any] | None, base: RuleSet | None = None) -> RuleSet:
    """The rules with a clinic's overrides: {rule id: {enabled?, severity?, threshold?: {...}}}.

    An unknown rule, field or threshold name, or a value of the wrong type, raises ValueError
    naming it, so a misspelt setting cannot silently keep the default.
    """
    base = base or default_rules()
    if not overrides:
        return base
    if not isinstance(overrides, Mapping):
        raise ValueError("signal rule overrides must be a mapping of rule id -> settings")
    rules = dict(base.rules)
    for rule_id, change in overrides.items():
        if rule_id not in rules:
            raise ValueError(f"unknown signal rule {rule_id!r}; known: {', '.join(RULE_IDS)}")
        if not isinstance(change, Mapping) or set(change) - OVERRIDABLE:
            raise ValueError(
                f"signal rule {rule_id}: may set only {', '.join(sorted(OVERRIDABLE))}"
            )
        rule = rules[rule_id]
        threshold = dict(rule.threshold)
        for name, value in (change.get("threshold") or {}).items():
            if name not in threshold or not _same_kind(threshold[name], value):
                raise ValueError(f"signal rule {rule_id}: bad threshold {name!r}")
            threshold[name] = value
        enabled = change.get("enabled", rule.enabled)
        severity = change.get("severity", rule.severity)
        if not isinstance(enabled, bool) or severity not in SEVERITIES:
            raise ValueError(
                f"signal rule {rule_id}: enabled is true|false, severity high|moderate|low"
            )
        rules[rule_id] = Rule(
            id=rule.id,
            title=rule.title,
            text=rule.text,
            severity=severity,
            alarm=rule.alarm,
            window=rule.window,
            threshold=MappingProxyType(threshold),
            source=rule.source,
            enabled=enabled,
        )
    return RuleSet(rules)
