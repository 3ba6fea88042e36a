"""SMART v1 and v2 scope syntax reduced to read/write."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.security import Scope, parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient/Observation.read", Scope("patient", "Observation", True, False)),
        ("patient/Observation.write", Scope("patient", "Observation", False, True)),
        ("patient/*.read", Scope("patient", "*", True, False)),
        ("user/*.read", Scope("user", "*", True, False)),
        ("system/*.write", Scope("system", "*", False, True)),
        (
            "system/MedicationAdministration.*",
            Scope("system", "MedicationAdministration", True, True),
        ),
        # SMART v2: r and s read; c, u and d write.
        ("patient/Observation.rs", Scope("patient", "Observation", True, False)),
        ("patient/Observation.s", Scope("patient", "Observation", True, False)),
        ("patient/Observation.cud", Scope("patient", "Observation", False, True)),
        ("patient/Observation.c", Scope("patient", "Observation", False, True)),
        ("user/Observation.d", Scope("user", "Observation", False, True)),
        ("system/*.cruds", Scope("system", "*", True, True)),
        ("user/Observation.ru", Scope("user", "Observation", True, True)),
    ],
)
def test_clinical_scopes_parse(text, expected):
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "openid",
        "fhirUser",
        "launch",
        "launch/patient",
        "offline_access",
        "profile",
        "patient/Observation.sr",  # v2 letters out of order
        "patient/Observation.x",
        "patient/Observation.readwrite",
        "patient/Observation",
        "patient/observation.read",  # resource types start upper-case
        "practitioner/Observation.read",
        "patient/Observation.rs?category=vital-signs",  # granular: cannot enforce the filter
        "Patient/Observation.read",
    ],
)
def test_other_scopes_grant_nothing(text):
    assert parse_scope(text) is None


def test_token_scope_string_keeps_only_clinical_scopes():
    scopes = parse_scopes("openid fhirUser launch/patient patient/*.rs  user/Observation.write")
    assert scopes == {
        Scope("patient", "*", True, False),
        Scope("user", "Observation", False, True),
    }


def test_scopes_from_a_list_of_strings():
    assert parse_scopes(["system/*.read", "system/Observation.cud openid"]) == {
        Scope("system", "*", True, False),
        Scope("system", "Observation", False, True),
    }


@pytest.mark.parametrize("text", ["openid system/*.read", "system/*.rs?patient=1", "system/*.x"])
def test_strict_parsing_rejects_anything_unenforceable(text):
    with pytest.raises(ValueError, match="not an enforceable clinical scope"):
        parse_scopes(text, strict=True)


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        (Scope("patient", "Observation", True, False), "patient/Observation.read"),
        (Scope("system", "*", False, True), "system/*.write"),
        (Scope("user", "*", True, True), "user/*.*"),
    ],
)
def test_scope_prints_in_v1_syntax(scope, text):
    assert str(scope) == text
    assert parse_scope(text) == scope


def test_scope_allows_matching_type_and_action_only():
    scope = Scope("patient", "Observation", read=True, write=False)
    assert scope.allows("read", "Observation")
    assert not scope.allows("write", "Observation")
    assert not scope.allows("read", "MedicationAdministration")
    assert Scope("user", "*", read=True, write=False).allows("read", "MedicationAdministration")


@given(st.sets(st.sampled_from("cruds"), min_size=1))
def test_every_v2_permission_set_maps_to_read_and_write(letters):
    permission = "".join(letter for letter in "cruds" if letter in letters)
    scope = parse_scope(f"patient/Observation.{permission}")
    assert scope is not None
    assert scope.read == bool(letters & {"r", "s"})
    assert scope.write == bool(letters & {"c", "u", "d"})


@given(st.text())
def test_lenient_parsing_never_raises(text):
    assert all(isinstance(scope, Scope) for scope in parse_scopes(text))
