"""Access rules: patient binding, user and system scopes, and what Forbidden says."""

from __future__ import annotations

import pytest

from service.security import Forbidden, Principal, parse_scopes

MRN = "https://clinic.example.test/mrn"


def principal(scopes: str, patient: str | None = None) -> Principal:
    return Principal("client-1", parse_scopes(scopes), patient)


def forbidden(who: Principal, action, resource_type, patient) -> Forbidden:
    assert not who.can(action, resource_type, patient)
    with pytest.raises(Forbidden) as caught:
        who.require(action, resource_type, patient)
    return caught.value


DIARY_APP = "patient/Observation.rs patient/Observation.cud patient/MedicationAdministration.read"


def test_patient_token_reads_and_writes_its_own_patient():
    app = principal(DIARY_APP, patient="123")
    assert app.can("read", "Observation", "Patient/123")
    assert app.can("write", "Observation", "Patient/123")
    app.require("write", "Observation", "Patient/123")  # does not raise


@pytest.mark.parametrize("action", ["read", "write"])
def test_patient_token_cannot_touch_another_patient(action):
    error = forbidden(principal(DIARY_APP, patient="123"), action, "Observation", "Patient/456")

    assert error.reason == "the credentials are limited to one patient's data"
    assert "456" not in error.reason and "456" not in error.www_authenticate
    assert error.needed_scope == f"patient/Observation.{action}"


def test_patient_token_missing_write_scope_names_the_scope():
    error = forbidden(
        principal(DIARY_APP, patient="123"), "write", "MedicationAdministration", "Patient/123"
    )
    assert error.needed_scope == "patient/MedicationAdministration.write"
    assert error.www_authenticate == (
        'Bearer realm="diarybridge", error="insufficient_scope", '
        'error_description="insufficient scope to write MedicationAdministration", '
        'scope="patient/MedicationAdministration.write"'
    )


def test_patient_scopes_need_a_named_patient():
    # Requests not about one patient (e.g. a search across patients) are not allowed.
    error = forbidden(principal(DIARY_APP, patient="123"), "read", "Observation", None)
    assert error.reason == "the credentials are limited to one patient's data"


def test_patient_scopes_without_a_patient_binding_grant_nothing():
    unbound = principal("patient/*.*")
    assert not unbound.can("read", "Observation", "Patient/123")
    assert not unbound.can("write", "Observation", None)


def test_patient_wildcard_covers_every_type():
    app = principal("patient/*.read", patient="123")
    assert app.can("read", "MedicationAdministration", "Patient/123")
    assert not app.can("write", "MedicationAdministration", "Patient/123")


def test_bare_id_claim_matches_reference_key():
    app = principal(DIARY_APP, patient="123")
    assert app.patient == "Patient/123"
    assert app.can("read", "Observation", "123")
    assert not app.can("read", "Observation", "1234")


def test_identifier_binding_matches_identifier_key_only():
    kiosk = principal(DIARY_APP, patient=f"{MRN}|000123")
    assert kiosk.can("write", "Observation", f"{MRN}|000123")
    assert not kiosk.can("write", "Observation", f"{MRN}|000124")
    assert not kiosk.can("write", "Observation", "https://other.example.test/mrn|000123")
    # Without a lookup a reference cannot be known to be the same patient.
    assert not kiosk.can("write", "Observation", "Patient/123")


def test_any_of_several_keys_of_the_data_may_match():
    kiosk = principal(DIARY_APP, patient=f"{MRN}|000123")
    assert kiosk.can("read", "Observation", ["Patient/123", f"{MRN}|000123"])
    assert not kiosk.can("read", "Observation", ["Patient/123", f"{MRN}|999"])


@pytest.mark.parametrize("bad_key", ["", "Group/1", "|x", "https://x.example.test/Patient/123"])
def test_unparsable_data_key_is_simply_not_the_patient(bad_key):
    assert not principal(DIARY_APP, patient="123").can("read", "Observation", bad_key)


def test_user_read_reads_any_patient_but_cannot_write():
    clinician = principal("user/*.read")
    assert clinician.can("read", "Observation", "Patient/1")
    assert clinician.can("read", "MedicationAdministration", f"{MRN}|2")
    assert clinician.can("read", "Observation", None)

    error = forbidden(clinician, "write", "Observation", "Patient/1")
    assert error.needed_scope == "user/Observation.write system/Observation.write"


def test_system_write_writes_any_patient():
    batch = principal("system/*.write system/Observation.read")
    assert batch.can("write", "MedicationAdministration", "Patient/1")
    assert batch.can("write", "Observation", f"{MRN}|2")
    assert batch.can("read", "Observation", "Patient/1")
    assert not batch.can("read", "MedicationAdministration", "Patient/1")


def test_v2_system_scopes_work_like_v1():
    batch = principal("system/Observation.cruds")
    assert batch.can("read", "Observation", "Patient/9")
    assert batch.can("write", "Observation", "Patient/9")
    assert not batch.can("write", "MedicationAdministration", "Patient/9")


def test_patient_binding_confines_even_user_and_system_scopes():
    launched = principal("user/*.read system/*.write", patient="123")
    assert launched.can("read", "Observation", "Patient/123")
    assert launched.can("write", "Observation", "Patient/123")
    assert not launched.can("read", "Observation", "Patient/456")
    assert not launched.can("write", "Observation", "Patient/456")


def test_no_scopes_no_access():
    error = forbidden(principal("openid"), "read", "Observation", "Patient/1")
    assert error.reason == "insufficient scope to read Observation"


def test_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown action"):
        principal("user/*.read").can("delete", "Observation", None)  # type: ignore[arg-type]


def test_invalid_patient_binding_is_rejected():
    with pytest.raises(ValueError):
        principal("patient/*.read", patient="Group/1")
