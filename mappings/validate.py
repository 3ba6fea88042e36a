"""Validation of resources: R4 -> R4B models, R5 -> R5 models.

Runtime path (check, validate_resource, validate_input, check_bundle): a validator compiled once
per model class from fhir.resources' own metadata (element names, types, cardinality, required
and choice elements, reference targets), stricter than `model_validate` and much faster, since
fhir.resources re-enters pydantic for every nested element (86% of conversion time, issue 12).
It also checks the required bindings of mappings/codes/bindings.yaml, which fhir.resources does
not (its code lists are truncated), and, on what we emit, that every unit is UCUM.
Error texts name the element, never its value (no patient data in answers or logs).
Elements whose primitive type it does not implement (xhtml, base64Binary, url, uuid, ...) send
the whole resource to fhir.resources as well, so an unknown shape is never checked less.
fhir.resources stays the reference: reference_check(), and the differential test in
tests/unit/mappings/test_validate_differential.py proves the runtime path at least as strict.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from fhir.resources import get_fhir_model_class as r5_model_class
from fhir.resources.R4B import get_fhir_model_class as r4b_model_class

from mappings.context import FhirVersion
from mappings.errors import InvalidInput, InvalidResource, UnsupportedVersion

UCUM = "http://unitsofmeasure.org"

# The FHIR regexes (same as fhir_core.types); fullmatch is used, so they are anchored.
_DATE = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?"
)
_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|"
    r"3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|([+\-])((0[0-9]|"
    r"1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
_INSTANT = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|"
    r"3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|([+\-])((0[0-9]|"
    r"1[0-3]):[0-5][0-9]|14:00))"
)
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?")
_CODE = re.compile(r"[^\s]+(\s[^\s]+)*")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_URI = re.compile(r"\S+")
_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")
_UCUM_CODE = re.compile(r"[!-~]+")
_UUID_URN = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Literal references: relative Type/id[/_history/vid], absolute http(s) ending so, urn:uuid.
_REFERENCE = re.compile(
    r"(?:https?://\S+/)?([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)


class _Invalid(Exception):
    """One validation failure; the path is built on the way up (no cost when valid)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []


class _NeedsReference(Exception):
    """An element of a primitive type this validator does not implement is present."""


def _fail(message: str) -> typing.NoReturn:
    raise _Invalid(message)


# --- primitive checkers: each raises _Invalid or returns None -------------------------------


def _string(v: Any) -> None:
    if type(v) is not str or not v:
        _fail("expected a non-empty string")
    if len(v) > 1048576:
        _fail("string longer than 1 MiB")


def _pattern(regex: re.Pattern[str], what: str) -> typing.Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not str or not regex.fullmatch(v):
            _fail(f"not a valid {what}")

    return check


def _calendar(v: str) -> None:
    # The regexes allow 2026-02-31; a real date (and time) is required.
    try:
        if len(v) >= 10:
            dt.date.fromisoformat(v[:10])
        if "T" in v:
            dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        _fail("not a real calendar date/time")


def _datetime_of(regex: re.Pattern[str], what: str) -> typing.Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not str or not regex.fullmatch(v):
            _fail(f"not a valid {what}")
        _calendar(v)

    return check


def _time(v: Any) -> None:
    if type(v) is not str or not _TIME.fullmatch(v):
        _fail("not a valid time")
    try:
        dt.time.fromisoformat(v)
    except ValueError:
        _fail("not a valid time")


def _boolean(v: Any) -> None:
    if type(v) is not bool:
        _fail("expected a boolean")


def _decimal(v: Any) -> None:
    if (type(v) is not int and type(v) is not float) or not math.isfinite(v):
        _fail("expected a finite JSON number")


def _integer(low: int, high: int) -> typing.Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not int or not low <= v <= high:
            _fail(f"expected an integer in {low}..{high}")

    return check


def _unimplemented(v: Any) -> None:
    raise _NeedsReference


_PRIMITIVES: dict[str, typing.Callable[[Any], None]] = {
    "String": _string,
    "Markdown": _string,
    "Code": _pattern(_CODE, "code"),
    "Id": _pattern(_ID, "id"),
    "Uri": _pattern(_URI, "uri"),
    "Canonical": _pattern(_URI, "canonical"),
    "Oid": _pattern(_OID, "oid"),
    "Date": _datetime_of(_DATE, "date"),
    "DateTime": _datetime_of(_DATETIME, "dateTime"),
    "Instant": _datetime_of(_INSTANT, "instant"),
    "Time": _time,
    "Decimal": _decimal,
    "Integer": _integer(-2147483648, 2147483647),
    "UnsignedInt": _integer(0, 2147483647),
    "PositiveInt": _integer(1, 2147483647),
    "Integer64": _integer(-9223372036854775807, 9223372036854775807),
    "Boolean": _boolean,
}


# --- compiled schemas ------------------------------------------------------------------------


# One checker per element; arrays are checked by _each around the item checker.
_Field = typing.Callable[[Any], None]


@dataclass(slots=True)
class _Schema:
    name: str
    resource_type: str | None
    fields: dict[str, _Field] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    group_of: dict[str, str] = field(default_factory=dict)  # choice element -> its group
    required_choices: tuple[str, ...] = ()  # choice groups that need one value
    post: typing.Callable[[dict[str, Any]], None] | None = None


@dataclass(frozen=True)
class _Mode:
    version: FhirVersion
    emit: bool  # what we send: every unit must be UCUM
    envelope: bool  # a Bundle whose entries' resources were validated already
    # fhir.resources accepted the elements of types implemented here only by it
    trusted_unimplemented: bool = False


@cache
def _bindings(version: FhirVersion) -> dict[str, frozenset[str]]:
    text = resources.files("mappings.codes").joinpath("bindings.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)[str(version)]
    return {key: frozenset(str(c) for c in entry["codes"]) for key, entry in raw.items()}


def _model_class(resource_type: str, version: FhirVersion) -> Any:
    if version == FhirVersion.R4:
        return r4b_model_class(resource_type)
    if version == FhirVersion.R5:
        return r5_model_class(resource_type)
    raise UnsupportedVersion(f"FHIR version {version!r} is not supported")


def _unwrap(annotation: Any) -> tuple[bool, Any, tuple[Any, ...]]:
    """(is a list, the inner type, Annotated metadata) of a field annotation."""
    many = False
    tp = annotation
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Union or origin is types.UnionType:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
            continue
        if origin in (list, typing.List):  # noqa: UP006
            many = True
            tp = typing.get_args(tp)[0]
            continue
        if origin is typing.Annotated:
            base, *meta = typing.get_args(tp)
            return many, base, tuple(meta)
        return many, tp, ()


def _trusted(v: Any) -> None:
    return None


def _primitive_checker(
    base: Any, meta: tuple[Any, ...], mode: _Mode
) -> typing.Callable[[Any], None]:
    for m in meta:
        checker = _PRIMITIVES.get(type(m).__name__) or _PRIMITIVES.get(getattr(m, "__name__", ""))
        if checker is not None:
            return checker
    if base is bool:
        return _boolean
    return _trusted if mode.trusted_unimplemented else _unimplemented


def _reference_check(
    schema_check: typing.Callable[[Any], None], targets: frozenset[str]
) -> typing.Callable[[Any], None]:
    any_target = not targets or "Resource" in targets

    def check(v: Any) -> None:
        schema_check(v)
        ref = v.get("reference")
        if ref is None or ref.startswith("#"):
            return  # contained references are resolved by _check_contained_refs
        if _UUID_URN.fullmatch(ref):
            return
        m = _REFERENCE.fullmatch(ref)
        if m is None:
            _fail("not a literal reference (Type/id, an absolute URL to one, or urn:uuid)")
        if not any_target and m.group(1) not in targets:
            _fail(f"reference to {m.group(1)} is not allowed here")

    return check


def _compile(cls: Any, mode: _Mode) -> _Schema:
    return _compile_cached(cls, mode)


@cache  # one schema per model class and mode: compiled on first use, then shared
def _compile_cached(cls: Any, mode: _Mode) -> _Schema:
    resource_type = cls.get_resource_type() if cls.has_resource_base() else None
    is_resource = resource_type is not None and "resourceType" not in cls.model_fields
    schema = _Schema(cls.__name__, resource_type if is_resource else None)
    bindings = _bindings(mode.version)
    required: list[str] = []
    choices: dict[str, tuple[list[str], bool]] = {}

    def nested(model: Any) -> typing.Callable[[Any], None]:
        resolved: list[_Schema] = []  # compiled on first use: the models are recursive

        def check(v: Any) -> None:
            if not resolved:
                resolved.append(_compile_cached(model, mode))
            _walk(resolved[0], v)

        return check

    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra or {}
        alias = info.alias or name
        many, base, meta = _unwrap(info.annotation)
        if alias.startswith("_"):  # the extension/id of a primitive (_status, _given, ...)
            ext_model = base.get_model_klass() if hasattr(base, "get_model_klass") else None
            ext_check = nested(ext_model) if ext_model is not None else _unimplemented
            if many:
                # a list of extensions parallel to a primitive list: null keeps the positions
                schema.fields[alias] = lambda v, c=ext_check: _parallel(v, c)  # type: ignore[misc]
            else:
                schema.fields[alias] = ext_check
            continue
        if not extra.get("element_property", False):
            continue  # fhir_comments: not a FHIR element, so not accepted
        if hasattr(base, "get_model_klass"):
            model = base.get_model_klass()
            if model.__name__ in ("Resource",) or base.__name__ == "ResourceType":
                check: typing.Callable[[Any], None] = (
                    _opaque_resource if mode.envelope else _any_resource(mode)
                )
            else:
                check = nested(model)
                if model.__name__ == "Reference" and "enum_reference_types" in extra:
                    check = _reference_check(check, frozenset(extra["enum_reference_types"]))
        else:
            check = _primitive_checker(base, meta, mode)
            # a binding on a type holds for its subtypes too (Quantity.comparator -> Age, ...)
            for owner in cls.__mro__:
                allowed = bindings.get(f"{owner.__name__}.{alias}")
                if allowed is not None:
                    check = _bound(check, allowed, f"{owner.__name__}.{alias}")
                    break
        group = extra.get("one_of_many") or None
        # every checker refuses a list itself (primitives check the JSON type, _walk wants an
        # object), so a single element needs no wrapper: one call less per element
        schema.fields[alias] = _many(check) if many else check
        if info.is_required() or extra.get("element_required"):
            required.append(alias)
        if group:
            schema.group_of[alias] = group
            names, req = choices.setdefault(group, ([], False))
            names.append(alias)
            choices[group] = (names, req or bool(extra.get("one_of_many_required")))
    schema.required = tuple(required)
    schema.required_choices = tuple(g for g, (_, r) in choices.items() if r)
    if cls.__name__ in ("Quantity", "Age", "Duration", "Count", "Distance", "SimpleQuantity"):
        schema.post = _quantity_post(mode.emit)
    elif is_resource and "contained" in schema.fields:
        schema.post = _check_contained_refs  # "#id" must name a contained resource
    return schema


def _parallel(v: Any, check: typing.Callable[[Any], None]) -> None:
    if type(v) is not list or not v:
        _fail("expected a non-empty array")
    for i, item in enumerate(v):
        if item is not None:
            try:
                check(item)
            except _Invalid as err:
                err.path.append(f"[{i}]")
                raise


def _bound(
    check: typing.Callable[[Any], None], allowed: frozenset[str], where: str
) -> typing.Callable[[Any], None]:
    def bound(v: Any) -> None:
        check(v)
        if v not in allowed:
            _fail(f"not in the required value set of {where}")

    return bound


def _quantity_post(emit: bool) -> typing.Callable[[dict[str, Any]], None]:
    def post(node: dict[str, Any]) -> None:
        if "code" in node and "system" not in node:
            _fail("qty-3: a unit code needs a system")
        if emit and ("code" in node or "unit" in node):
            # units we send are UCUM codes (case-sensitive printable ASCII, no spaces)
            if node.get("system") != UCUM:
                _fail("units we send are UCUM")
            if not _UCUM_CODE.fullmatch(node.get("code") or ""):
                _fail("not a UCUM code")

    return post


def _local_refs(node: Any, out: list[str]) -> None:
    if type(node) is dict:
        for k, v in node.items():
            if k == "reference" and type(v) is str and v.startswith("#"):
                out.append(v)
            elif k != "contained":
                _local_refs(v, out)
    elif type(node) is list:
        for v in node:
            _local_refs(v, out)


def _check_contained_refs(node: dict[str, Any]) -> None:
    contained = node.get("contained")
    if not contained:
        return  # scanning every resource costs a fifth of the walk; fhir.resources never checks
    refs: list[str] = []
    _local_refs(node, refs)
    ids = {f"#{c.get('id')}" for c in contained}
    for ref in refs:
        if ref != "#" and ref not in ids:
            _fail("a #reference names no contained resource")


def _opaque_resource(v: Any) -> None:
    if type(v) is not dict or type(v.get("resourceType")) is not str:
        _fail("expected a resource")


@cache
def _any_resource(mode: _Mode) -> typing.Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not dict:
            _fail("expected a resource")
        rtype = v.get("resourceType")
        if type(rtype) is not str:
            _fail("resourceType missing")
        try:
            schema = _schema_of(rtype, mode)
        except (KeyError, ValueError):
            _fail(f"unknown resourceType {rtype[:40]!r}")
        _walk(schema, v)

    return check


def _many(check: typing.Callable[[Any], None]) -> _Field:
    def each(value: Any) -> None:
        if type(value) is not list or not value:
            _fail("expected a non-empty array")
        for i, item in enumerate(value):
            try:
                check(item)
            except _Invalid as err:
                err.path.append(f"[{i}]")
                raise

    return each


def _walk(schema: _Schema, node: Any) -> None:
    if type(node) is not dict or not node:
        _fail(f"{schema.name}: expected a non-empty object")
    fields = schema.fields
    key = ""
    try:  # one try for the whole loop: `key` names the element that failed
        for key, value in node.items():
            f = fields.get(key)
            if f is not None:
                f(value)
            elif key == "resourceType" and schema.resource_type is not None:
                if value != schema.resource_type:
                    _fail(f"resourceType is not {schema.resource_type}")
            else:
                _fail("unknown element")
    except _Invalid as err:
        err.path.append(f".{key}")
        raise
    for name in schema.required:
        if name not in node:
            _fail(f"{schema.name}.{name} is required")
    group_of = schema.group_of
    if group_of:
        groups = [group_of[k] for k in node if k in group_of]
        if len(groups) != len(set(groups)):
            _fail(f"{schema.name}: two values for one choice element [x]")
        for group in schema.required_choices:
            if group not in groups:
                _fail(f"{schema.name}.{group}[x] is required")
    if schema.post is not None:
        schema.post(node)


_SCHEMAS: dict[tuple[str, _Mode], _Schema] = {}


def _schema_of(resource_type: str, mode: _Mode) -> _Schema:
    key = (resource_type, mode)
    schema = _SCHEMAS.get(key)
    if schema is None:
        schema = _SCHEMAS[key] = _compile(_model_class(resource_type, mode.version), mode)
    return schema


def _fast_check(resource: dict[str, Any], mode: _Mode) -> str | None:
    resource_type = resource.get("resourceType") if type(resource) is dict else None
    if not isinstance(resource_type, str):
        return "resourceType missing"
    try:
        schema = _schema_of(resource_type, mode)
    except (KeyError, ValueError):
        return f"unknown resourceType {resource_type!r}"
    try:
        _walk(schema, resource)
    except _Invalid as err:
        return "".join(reversed(err.path)).lstrip(".") + ": " + err.message
    except _NeedsReference:
        error = reference_check(resource, mode.version)
        if error is not None:
            return error
        # fhir.resources accepted the parts we do not implement; our own checks still apply
        # to the rest, so walk again with those parts taken as valid.
        trusted = _Mode(mode.version, mode.emit, mode.envelope, trusted_unimplemented=True)
        try:
            _walk(_schema_of(resource_type, trusted), resource)
        except _Invalid as err:
            return "".join(reversed(err.path)).lstrip(".") + ": " + err.message
    return None


# --- public API ------------------------------------------------------------------------------


def reference_check(resource: dict[str, Any], version: FhirVersion) -> str | None:
    """fhir.resources' verdict (model_validate): the reference the fast path is tested against."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return "resourceType missing"
    try:
        model = _model_class(resource_type, version)
    except (KeyError, ValueError):
        return f"unknown resourceType {resource_type!r}"
    try:
        model.model_validate(resource)
    except ValueError as err:  # pydantic.ValidationError is a ValueError
        return str(err)
    except (TypeError, KeyError, AttributeError) as err:
        # fhir.resources crashes on some malformed input (a dict resourceType in contained):
        # a refusal all the same
        return f"{type(err).__name__}: {err}"
    return None


def check(resource: dict[str, Any], version: FhirVersion, *, emit: bool = False) -> str | None:
    """The validation error text for a resource, or None when it is valid.

    emit=True for what we send: every unit must also be a UCUM code.
    """
    if version not in (FhirVersion.R4, FhirVersion.R5):
        raise UnsupportedVersion(f"FHIR version {version!r} is not supported")
    return _fast_check(resource, _Mode(version, emit, False))


def check_bundle(bundle: dict[str, Any], version: FhirVersion) -> str | None:
    """Errors of a Bundle we built around resources that were validated already (type,
    request.method, fullUrl, ...): the entries' resources are not walked again."""
    return _fast_check(bundle, _Mode(version, True, True))


def validate_resource(resource: dict[str, Any], version: FhirVersion) -> None:
    """Raise InvalidResource (a bug of ours) unless a resource we built is valid."""
    error = check(resource, version, emit=True)
    if error is not None:
        raise InvalidResource(f"{resource.get('resourceType')} ({version}) is invalid: {error}")


def validate_bundle(bundle: dict[str, Any], version: FhirVersion) -> None:
    """Raise InvalidResource unless a Bundle we built is valid (its resources checked before)."""
    error = check_bundle(bundle, version)
    if error is not None:
        raise InvalidResource(f"Bundle ({version}) is invalid: {error}")


def validate_input(resource: dict[str, Any], version: FhirVersion) -> None:
    """Raise InvalidInput unless a resource given to us is valid."""
    error = check(resource, version)
    if error is not None:
        raise InvalidInput(f"{resource.get('resourceType')} ({version}) is invalid: {error}")
