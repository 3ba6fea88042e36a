"""What a FHIR server says it can do (CapabilityStatement) and how we push to it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import InvalidServerResponse, UnsupportedServerCapability, UnsupportedServerVersion

FhirRelease = Literal["R4", "R5"]
PushMethod = Literal["update-as-create", "conditional-update", "conditional-create"]
Transport = Literal["transaction", "batch", "single"]

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
# R4B (4.3) changed no resource we exchange, so it is handled as R4.
_RELEASE_BY_MAJOR_MINOR: dict[tuple[int, int], FhirRelease] = {
    (4, 0): "R4",
    (4, 3): "R4",
    (5, 0): "R5",
}


def release_for_version(fhir_version: str) -> FhirRelease:
    """Map a CapabilityStatement.fhirVersion ('4.0.1', '5.0.0') to 'R4' or 'R5'."""
    match = _VERSION.match(fhir_version.strip())
    release = (
        _RELEASE_BY_MAJOR_MINOR.get((int(match.group(1)), int(match.group(2)))) if match else None
    )
    if release is None:
        # Pre-release labels (e.g. 5.0.0-ballot) differ from the published release: refuse them.
        raise UnsupportedServerVersion(
            f"FHIR server reports fhirVersion {fhir_version!r}; "
            "supported are 4.0.x (R4), 4.3.x (R4B, handled as R4) and 5.0.x (R5)"
        )
    return release


@dataclass(frozen=True)
class ResourceCapability:
    """What the server supports for one resource type."""

    type: str
    interactions: frozenset[str]
    update_create: bool
    conditional_create: bool
    conditional_update: bool
    operations: frozenset[str]


@dataclass(frozen=True)
class ServerCapabilities:
    """The parts of a CapabilityStatement that decide how we talk to a server."""

    fhir_version: str
    release: FhirRelease
    software_name: str | None
    software_version: str | None
    system_interactions: frozenset[str]
    system_operations: frozenset[str]
    resources: Mapping[str, ResourceCapability]

    @property
    def transaction(self) -> bool:
        """Server accepts transaction Bundles."""
        return "transaction" in self.system_interactions

    @property
    def batch(self) -> bool:
        """Server accepts batch Bundles."""
        return "batch" in self.system_interactions

    @property
    def export(self) -> bool:
        """Server offers Bulk Data $export at system, Patient or Group level."""
        return "export" in self.system_operations or any(
            "export" in res.operations for res in self.resources.values()
        )

    def resource(self, resource_type: str) -> ResourceCapability | None:
        """Capability for one type, or None when the server does not list it."""
        return self.resources.get(resource_type)

    def supports(self, resource_type: str, interaction: str) -> bool:
        """True when `interaction` (read, create, update, search-type, ...) is listed."""
        res = self.resources.get(resource_type)
        return res is not None and interaction in res.interactions


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _codes(items: Any, key: str) -> frozenset[str]:
    if not isinstance(items, list):
        return frozenset()
    return frozenset(
        item[key] for item in items if isinstance(item, Mapping) and isinstance(item.get(key), str)
    )


def _operation_names(items: Any) -> frozenset[str]:
    # Servers write the name with or without '$'; the canonical tail is a fallback.
    names: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        name = item.get("name")
        if isinstance(name, str):
            names.add(name.lstrip("$"))
        definition = item.get("definition")
        if isinstance(definition, str) and definition.rstrip("/").endswith("/export"):
            names.add("export")
    return frozenset(names)


def parse_capability_statement(data: Any) -> ServerCapabilities:
    """Read a CapabilityStatement (JSON) into ServerCapabilities; reject unsupported versions."""
    if not isinstance(data, Mapping) or data.get("resourceType") != "CapabilityStatement":
        got = data.get("resourceType") if isinstance(data, Mapping) else type(data).__name__
        raise InvalidServerResponse(f"/metadata returned {got!r}, expected CapabilityStatement")
    fhir_version = data.get("fhirVersion")
    if not isinstance(fhir_version, str):
        raise UnsupportedServerVersion("CapabilityStatement has no fhirVersion")
    release = release_for_version(fhir_version)
    rest_list = _list(data.get("rest"))
    rest: Mapping[str, Any] = next(
        (r for r in rest_list if isinstance(r, Mapping) and r.get("mode") == "server"), {}
    )
    software = data.get("software")
    if not isinstance(software, Mapping):
        software = {}
    return ServerCapabilities(
        fhir_version=fhir_version,
        release=release,
        software_name=_str(software.get("name")),
        software_version=_str(software.get("version")),
        system_interactions=_codes(rest.get("interaction"), "code"),
        system_operations=_operation_names(rest.get("operation")),
        resources=_resources(rest),
    )


def _resources(rest: Mapping[str, Any]) -> dict[str, ResourceCapability]:
    """rest.resource by type (entries without a type are skipped)."""
    return {
        raw["type"]: ResourceCapability(
            type=raw["type"],
            interactions=_codes(raw.get("interaction"), "code"),
            update_create=raw.get("updateCreate") is True,
            conditional_create=raw.get("conditionalCreate") is True,
            conditional_update=raw.get("conditionalUpdate") is True,
            operations=_operation_names(raw.get("operation")),
        )
        for raw in _list(rest.get("resource"))
        if isinstance(raw, Mapping) and isinstance(raw.get("type"), str)
    }


@dataclass(frozen=True)
class PushStrategy:
    """How to write our resources to a server: per-resource method and the transport."""

    method: PushMethod
    transport: Transport


def _method_for(res: ResourceCapability | None) -> list[PushMethod]:
    if res is None:
        return []
    usable: list[PushMethod] = []
    if "update" in res.interactions and res.update_create:
        usable.append("update-as-create")
    if "update" in res.interactions and res.conditional_update:
        usable.append("conditional-update")
    if "create" in res.interactions and res.conditional_create:
        usable.append("conditional-create")
    return usable


# Preference order, best first:
# 1. update-as-create: PUT Type/{our deterministic id}. One write, no server-side search, an
#    upsert (re-pushing an edited entry updates it) and naturally idempotent, so safe to retry.
# 2. conditional-update: PUT Type?identifier=... Still an upsert and idempotent, but the server
#    must search the identifier first, and the server (not we) picks the id on first create.
# 3. conditional-create: POST + If-None-Exist. Idempotent (no duplicates on retry) but never
#    updates: a changed record needs a separate read + update by the caller.
# A plain POST create is never chosen: a retried or replayed push would duplicate data.
_METHOD_ORDER: tuple[PushMethod, ...] = (
    "update-as-create",
    "conditional-update",
    "conditional-create",
)


def choose_push_strategy(caps: ServerCapabilities, resource_types: Iterable[str]) -> PushStrategy:
    """Pick the cheapest idempotent write method all types support, and the best transport."""
    types = sorted(set(resource_types))
    usable_per_type = {t: set(_method_for(caps.resource(t))) for t in types}
    method = next(
        (m for m in _METHOD_ORDER if all(m in usable for usable in usable_per_type.values())),
        None,
    )
    if method is None:
        lacking = [t for t, usable in usable_per_type.items() if not usable]
        detail = f"no idempotent write for {', '.join(lacking)}" if lacking else "no common method"
        raise UnsupportedServerCapability(
            f"server supports neither updateCreate, conditionalUpdate nor conditionalCreate "
            f"for every type ({detail})"
        )
    return PushStrategy(method=method, transport=_transport(caps))


def _transport(caps: ServerCapabilities) -> Transport:
    # transaction: all-or-nothing and one round trip (an infusion's resources land together);
    # batch: one round trip, per-entry results, not atomic; single: works on every server.
    return "transaction" if caps.transaction else "batch" if caps.batch else "single"
