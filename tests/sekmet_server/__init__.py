"""The second real FHIR R4 server for the integration tests: SEKMET (PyPI sekmet-fhir)."""

from tests.sekmet_server.launcher import (
    SekmetServer,
    SekmetServerError,
    ensure_sekmet_installed,
    start_sekmet_server,
)

__all__ = ["SekmetServer", "SekmetServerError", "ensure_sekmet_installed", "start_sekmet_server"]
