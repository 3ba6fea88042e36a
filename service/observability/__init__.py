"""Logs, request ids and metrics: what operations sees of the service.

Other layers need only `current_request_id()` (to pass on, e.g. to the FHIR client) and the
counting functions in `service.observability.metrics`. The Flask request hooks live in
`service.observability.http` and are not imported here: the sync worker imports this package
and must not pull in the web framework.
"""

from service.observability.logs import configure_logging
from service.observability.metrics import Metrics, install_metrics
from service.observability.request_id import current_request_id

__all__ = [
    "Metrics",
    "configure_logging",
    "current_request_id",
    "install_metrics",
]
