"""Who is calling and what they may do: the only place that decides on access."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal

from service.security.errors import Forbidden
from service.security.patients import parse_patient_key
from service.security.scopes import Action, Scope

PatientKeys = str | Collection[str] | None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    `patient`, when set, confines the caller to that one patient's data whatever its scopes
    (a diary app's patient launch). It is normalised by `parse_patient_key`.
    """

    client_id: str
    scopes: frozenset[Scope]
    patient: str | None = None
    credential: Literal["jwt", "api_key"] = field(default="jwt", compare=False)

    def __post_init__(self) -> None:
        if self.patient is not None:
            object.__setattr__(self, "patient", parse_patient_key(self.patient))

    def can(self, action: Action, resource_type: str, patient: PatientKeys = None) -> bool:
        """Whether the caller may `action` `resource_type` data of `patient`.

        `patient` is the data's patient key ("Patient/123" or "system|value"), or several keys
        of the same patient, or None for requests that are not about one patient.
        """
        if action not in ("read", "write"):
            raise ValueError(f"unknown action {action!r}")
        if self.patient is not None and not self._is_own(patient):
            return False
        return any(
            scope.allows(action, resource_type)
            # A patient scope without a patient binding has nobody to apply to.
            and (scope.context != "patient" or self.patient is not None)
            for scope in self.scopes
        )

    def require(self, action: Action, resource_type: str, patient: PatientKeys = None) -> None:
        """Raise Forbidden unless `can(action, resource_type, patient)`."""
        if self.can(action, resource_type, patient):
            return
        if self.patient is not None:
            needed = f"patient/{resource_type}.{action}"
            if not self._is_own(patient):
                # One answer for every other patient, existing or not: nothing is revealed.
                raise Forbidden("the credentials are limited to one patient's data", needed)
        else:
            needed = f"user/{resource_type}.{action} system/{resource_type}.{action}"
        raise Forbidden(f"insufficient scope to {action} {resource_type}", needed)

    def _is_own(self, patient: PatientKeys) -> bool:
        if patient is None or self.patient is None:
            return False
        keys = [patient] if isinstance(patient, str) else list(patient)
        for key in keys:
            try:
                if parse_patient_key(key) == self.patient:
                    return True
            except ValueError:
                continue  # an unparsable key is simply not this patient
        return False
