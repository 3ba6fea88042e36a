"""Push planning: what to send for a record given what the ledger knows, without any I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from mappings import business_identifier, record_to_resources
from mappings.bundle import identifier_token
from mappings.errors import InvalidResource
from service.fhir_client import Update
from service.store import ResourceState, content_hash
from service.sync.plan import chunks, plan_record, transaction_of
from tests.unit.mappings.samples import ENTRY, INFUSION, ctx


def known(resources: list[dict], server: str = "srv", version: str = "1") -> list[ResourceState]:
    """Ledger states as after a successful push of exactly these resources."""
    return [
        ResourceState(
            resource_type=r["resourceType"],
            identifier_system=business_identifier(r)[0],
            identifier_value=business_identifier(r)[1],
            server_id=f"{server}-{n}",
            version_id=version,
            last_sent_hash=content_hash(r),
        )
        for n, r in enumerate(resources)
    ]


def test_new_record_with_update_as_create_puts_deterministic_ids() -> None:
    resources = record_to_resources(ENTRY, ctx())
    plan = plan_record(resources, [], "update-as-create")
    assert len(plan.writes) == len(resources) and not plan.unchanged
    for write, resource in zip(plan.writes, resources, strict=True):
        assert write.request == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
        assert write.body["id"] == resource["id"]


def test_new_record_with_conditional_create_points_references_at_full_urls() -> None:
    resources = record_to_resources(INFUSION, ctx())
    plan = plan_record(resources, [], "conditional-create")
    admin = next(w for w in plan.writes if w.identifier[1].endswith("/administration"))
    reaction = next(w for w in plan.writes if "/reaction-" in w.identifier[1])
    step = next(w for w in plan.writes if "/rate-step-" in w.identifier[1])
    event = next(w for w in plan.writes if w.identifier[1].endswith("/adverse-event"))
    assert admin.request["method"] == "POST"
    assert admin.request["ifNoneExist"].startswith("identifier=https://diarybridge.dev/fhir/sid/")
    for write, resource in zip(plan.writes, resources, strict=True):  # as the mapping's Bundle
        assert write.request["ifNoneExist"] == identifier_token(resource)
    assert "id" not in admin.body
    assert step.body["partOf"] == [{"reference": admin.full_url}]
    assert event.body["suspectEntity"] == [{"instance": {"reference": admin.full_url}}]
    assert event.body["subjectMedicalHistory"] == [{"reference": reaction.full_url}]


def test_unchanged_resources_are_not_sent_and_changed_ones_update_with_if_match() -> None:
    before = record_to_resources(ENTRY, ctx())
    states = known(before, version="7")
    after = record_to_resources(replace(ENTRY, fatigue=(ENTRY.fatigue or 0) + 1), ctx())
    plan = plan_record(after, states, "conditional-create")
    assert len(plan.writes) == 1
    (write,) = plan.writes
    assert write.identifier[1].endswith("/fatigue")
    assert write.is_update
    state = next(s for s in states if s.identifier_value == write.identifier[1])
    assert write.request == {
        "method": "PUT",
        "url": f"Observation/{state.server_id}",
        "ifMatch": 'W/"7"',
    }
    assert write.body["id"] == state.server_id
    assert len(plan.unchanged) == len(before) - 1


def test_updates_reference_the_servers_ids_of_our_other_resources() -> None:
    resources = record_to_resources(INFUSION, ctx())
    states = known(resources)
    changed = [dict(r) for r in resources]
    for r in changed:
        if r["resourceType"] == "AdverseEvent":
            r["date"] = "2026-11-12T08:00:00+01:00"
    plan = plan_record(changed, states, "update-as-create")
    admin_state = next(s for s in states if s.identifier_value.endswith("/administration"))
    symptom_state = next(s for s in states if "/reaction-" in s.identifier_value)
    (write,) = plan.writes
    assert write.resource_type == "AdverseEvent"
    assert write.body["suspectEntity"] == [
        {"instance": {"reference": f"MedicationAdministration/{admin_state.server_id}"}}
    ]
    assert write.body["subjectMedicalHistory"] == [
        {"reference": f"Observation/{symptom_state.server_id}"}
    ]


def test_a_part_the_record_no_longer_has_is_dropped() -> None:
    states = known(record_to_resources(ENTRY, ctx()))
    plan = plan_record(
        record_to_resources(replace(ENTRY, note=None), ctx()), states, "update-as-create"
    )
    assert [s.identifier_value.rsplit("/", 1)[1] for s in plan.dropped] == ["note"]
    assert not plan.writes


def test_chunks_never_split_a_record_and_skip_empty_plans() -> None:
    big = plan_record(record_to_resources(ENTRY, ctx()), [], "update-as-create")
    empty = replace(big, writes=())
    groups = chunks([big, empty, big, big], max_entries=2 * big.size)
    assert groups == [[0, 2], [3]]
    bundle = transaction_of([big, big])
    assert bundle["type"] == "transaction" and len(bundle["entry"]) == 2 * big.size


@dataclass(frozen=True)
class Fetch(Update):
    """No FHIR interaction: its request method lies outside the required value set."""

    def request(self) -> dict:
        return {**super().request(), "method": "FETCH"}


def test_a_bundle_with_a_bad_request_method_never_leaves() -> None:
    plan = plan_record(record_to_resources(ENTRY, ctx()), [], "update-as-create")
    assert transaction_of([plan], kind="batch")["type"] == "batch"
    bogus = replace(plan.writes[0], interaction=Fetch(plan.writes[0].body))
    with pytest.raises(InvalidResource, match="required value set"):
        transaction_of([replace(plan, writes=(bogus,))])
    with pytest.raises(InvalidResource, match="required value set"):
        transaction_of([plan], kind="bogus")


def test_chunks_keep_conditional_writes_under_their_own_cap() -> None:
    resources = record_to_resources(ENTRY, ctx())
    conditional = plan_record(resources, [], "conditional-create")
    plain = plan_record(resources, [], "update-as-create")
    assert conditional.conditional_size == conditional.size > 1
    assert plain.conditional_size == 0
    cap = conditional.size + 1
    # Plain writes fill a Bundle up to max_entries; conditional ones stop at their cap.
    assert chunks([plain, plain, plain], max_entries=1000, max_conditional=cap) == [[0, 1, 2]]
    assert chunks([conditional] * 3, max_entries=1000, max_conditional=cap) == [[0], [1], [2]]
    assert chunks([conditional] * 3, max_entries=1000) == [[0, 1, 2]]
