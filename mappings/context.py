"""What a mapping needs beyond the record: who sent it and which FHIR version to speak."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CLIENT_SOURCE_PREFIX = "urn:diarybridge:client:"


def client_source(app_namespace: str) -> str:
    """meta.source of the resources made from what one sending app gave us."""
    return CLIENT_SOURCE_PREFIX + app_namespace


class FhirVersion(StrEnum):
    """FHIR releases we speak on the wire; R4 is what clinic servers speak, so it is the default."""

    R4 = "R4"
    R5 = "R5"


@dataclass(frozen=True)
class MappingContext:
    """The sending app's namespace (part of every business identifier), meta.source, and version.

    patient_scope: the patient key ("Patient/123" or "system|value") when the app's record ids
    are per patient (a patient-bound credential): it then becomes part of every identifier, so
    two patients' records with the same id stay two records. None: ids are unique per app.
    canonical_base: where our local CodeSystems live; None takes the deployment's setting.

    mg_adl_questionnaire_response: also send each MG-ADL as a QuestionnaireResponse against our
    MG-ADL Questionnaire, the total Observation `derivedFrom` it (the Observation stays, for
    charts and searches).
    """

    app_namespace: str
    source: str
    fhir_version: FhirVersion = FhirVersion.R4
    patient_scope: str | None = None
    # Canonical base of our local CodeSystems (mappings.canonical); None: the deployment's.
    canonical_base: str | None = None
    mg_adl_questionnaire_response: bool = False
