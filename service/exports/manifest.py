"""The Bulk Data manifest of a finished export."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ERRORS = "OperationOutcome"


def build_manifest(
    *,
    transaction_time: str,
    request_url: str,
    requires_access_token: bool,
    files: Mapping[str, tuple[str, int]],
    url_for: Callable[[str], str],
    extension: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest for `files` (file name -> (type, count)); empty files are left out.

    `extension` is the IG's reserved field for what a server adds: here how the resources were
    fetched and, for a patient's export, how many were checked and dropped (counts only).
    """
    output: list[dict[str, Any]] = []
    error: list[dict[str, Any]] = []
    for name, (kind, count) in sorted(files.items()):
        if count == 0:
            continue
        item = {"type": kind, "url": url_for(name), "count": count}
        (error if kind == ERRORS else output).append(item)
    manifest: dict[str, Any] = {
        "transactionTime": transaction_time,
        "request": request_url,
        "requiresAccessToken": requires_access_token,
        "output": output,
        "error": error,
    }
    if extension:
        manifest["extension"] = dict(extension)
    return manifest
