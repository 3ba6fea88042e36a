"""Collection and transaction Bundles; transactions use conditional requests on our
business identifiers so a push can be repeated without creating duplicates."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from mappings.context import MappingContext
from mappings.errors import MappingError
from mappings.identifiers import business_identifier
from mappings.validate import validate_bundle

JSON = dict[str, Any]


class TransactionStrategy(StrEnum):
    """How a transaction Bundle writes each resource."""

    CONDITIONAL_CREATE = "conditional-create"  # POST + ifNoneExist=identifier=system|value
    CONDITIONAL_UPDATE = "conditional-update"  # PUT Type?identifier=system|value
    UPDATE_AS_CREATE = "update-as-create"  # PUT Type/<deterministic id>


def full_url(resource: JSON) -> str:
    """urn:uuid:<id>: our ids are uuid5 values, so they double as fullUrls."""
    return f"urn:uuid:{resource['id']}"


def collection_bundle(resources: Iterable[JSON], ctx: MappingContext) -> JSON:
    """A Bundle of type collection holding the resources as they are."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": full_url(r), "resource": r} for r in resources],
    }
    validate_bundle(bundle, ctx.fhir_version)  # Bundle.type etc.; entries were checked
    return bundle


def identifier_token(resource: JSON) -> str:
    """identifier=system|value, escaped for a FHIR token search and URL-encoded."""
    system, value = business_identifier(resource)
    escaped = "".join("\\" + ch if ch in "\\|,$" else ch for ch in value)
    return "identifier=" + quote(f"{system}|{escaped}", safe=":/|")


def _rewrite_references(node: Any, targets: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v in targets:
                out[k] = targets[v]
            else:
                out[k] = _rewrite_references(v, targets)
        return out
    if isinstance(node, list):
        return [_rewrite_references(v, targets) for v in node]
    return node


def transaction_bundle(
    resources: Iterable[JSON], ctx: MappingContext, strategy: TransactionStrategy | str
) -> JSON:
    """A transaction Bundle writing each resource with the chosen strategy."""
    try:
        how = TransactionStrategy(strategy)
    except ValueError:
        raise MappingError(f"unknown transaction strategy {strategy!r}") from None
    items = list(resources)
    # With conditional requests the server picks the ids, so references between our own
    # resources point at the entries' fullUrls, which the server resolves in the transaction.
    targets = {f"{r['resourceType']}/{r['id']}": full_url(r) for r in items}
    entries = []
    for r in items:
        rtype = r["resourceType"]
        if how is TransactionStrategy.UPDATE_AS_CREATE:
            body = copy.deepcopy(r)
            request = {"method": "PUT", "url": f"{rtype}/{r['id']}"}
        else:
            body = _rewrite_references(r, targets)
            del body["id"]
            if how is TransactionStrategy.CONDITIONAL_CREATE:
                request = {"method": "POST", "url": rtype, "ifNoneExist": identifier_token(r)}
            else:
                request = {"method": "PUT", "url": f"{rtype}?{identifier_token(r)}"}
        entries.append({"fullUrl": full_url(r), "resource": body, "request": request})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    # required bindings (Bundle.type, request.method) before it leaves; entries were checked
    validate_bundle(bundle, ctx.fhir_version)
    return bundle
