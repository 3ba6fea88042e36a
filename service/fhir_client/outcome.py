"""OperationOutcome as a small typed value, parsed leniently from server JSON."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A server's diagnostics may quote the body it refused (notes, values): never for a patient's
# eyes or our database. Operators (system/* callers) see them cut short and without control
# characters, which could forge lines in a terminal or a log viewer.
DIAGNOSTICS_LIMIT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


# Issue codes are logged and answered, so only the value set's own codes are kept
# (http://hl7.org/fhir/issue-type, R4 and R5); anything else a server sends becomes "unknown".
ISSUE_TYPES = frozenset((
    "invalid", "structure", "required", "value", "invariant", "security", "login", "unknown",
    "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate",
    "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension",
    "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store", "exception",
    "timeout", "incomplete", "throttled", "informational", "success", "limited-filter",
))  # fmt: skip
_SEVERITIES = ("fatal", "error", "warning", "information")
_MAX_EXPRESSIONS = 5


def clean_diagnostics(text: str | None) -> str | None:
    """Diagnostics for an operator: control characters become a space, at most 200 characters."""
    if not text:
        return None
    cleaned = _CONTROL.sub(" ", text).strip()
    if len(cleaned) > DIAGNOSTICS_LIMIT:
        cleaned = cleaned[: DIAGNOSTICS_LIMIT - 1] + "\u2026"
    return cleaned or None


@dataclass(frozen=True)
class OutcomeIssue:
    """One OperationOutcome.issue: what the server said went wrong and where."""

    severity: str
    code: str
    diagnostics: str | None = None
    details_text: str | None = None
    expression: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperationOutcome:
    """The issues of an OperationOutcome, in server order."""

    issues: tuple[OutcomeIssue, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        """Issue codes (e.g. 'invalid', 'conflict'): safe to log, unlike diagnostics."""
        return tuple(issue.code for issue in self.issues)

    @property
    def has_errors(self) -> bool:
        """True when any issue is 'error' or 'fatal' (a batch entry may carry only warnings)."""
        return any(issue.severity in ("error", "fatal") for issue in self.issues)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_operation_outcome(data: Any) -> OperationOutcome | None:
    """Return the OperationOutcome in `data`, or None when it is not one."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "OperationOutcome":
        return None
    issues = (_issue(raw) for raw in data.get("issue") or [] if isinstance(raw, Mapping))
    return OperationOutcome(issues=tuple(issues))


def _issue(raw: Mapping[str, Any]) -> OutcomeIssue:
    details = raw.get("details")
    details_text = _optional_str(details.get("text")) if isinstance(details, Mapping) else None
    # R4 still allows the deprecated `location` (XPath); keep FHIRPath `expression` only.
    code = _optional_str(raw.get("code")) or "unknown"
    severity = _optional_str(raw.get("severity"))
    expressions = (clean_diagnostics(e) for e in _strings(raw.get("expression")))
    return OutcomeIssue(
        severity=severity if severity in _SEVERITIES else "error",
        code=code if code in ISSUE_TYPES else "unknown",
        diagnostics=_optional_str(raw.get("diagnostics")),
        details_text=details_text,
        expression=tuple(e for e in expressions if e)[:_MAX_EXPRESSIONS],
    )
