"""The errors a use case lets through to its caller, in one place for the API's error table.

Re-exported, not wrapped: the store's and the FHIR client's exceptions are already their layer's
own types and carry what an answer needs (StorageUnavailable's retry_after, a client error's
issue code); wrapping them would mean a translation at every use-case call and in the request
hooks (the schema gate, the audit write) that raise them too, for no information gained. The
API then needs no import of the store or the client to map them to HTTP.
"""

from service.fhir_client import FhirClientError
from service.store import AmbiguousRecordError, PatientMismatchError, StorageUnavailable
from service.sync.requests import BadPatientParameter, NoSuchSyncItem
from service.sync.search import BadPageToken, SearchRefused
from service.sync.target import NoFhirServer

__all__ = [
    "AmbiguousRecordError",
    "BadPageToken",
    "BadPatientParameter",
    "FhirClientError",
    "NoFhirServer",
    "NoSuchSyncItem",
    "PatientMismatchError",
    "SearchRefused",
    "StorageUnavailable",
]
