"""Logs, request ids and metrics: what operations sees of the service.

Other layers need only `current_request_id()` (to pass on, e.g. to the FHIR client) and the
counting functions in `service.observability.metrics`.
"""

from service.observability.http import REQUEST_ID_HEADER, install_request_hooks
from service.observability.logs import configure_logging
from service.observability.metrics import Metrics, install_metrics
from service.observability.request_id import current_request_id

__all__ = [
    "REQUEST_ID_HEADER",
    "Metrics",
    "configure_logging",
    "current_request_id",
    "install_metrics",
    "install_request_hooks",
]
