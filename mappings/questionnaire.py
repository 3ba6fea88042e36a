"""The MG-ADL as the instrument it is: a QuestionnaireResponse against our published Questionnaire
(the SDC way EHRs render patient-reported outcomes), offered beside the MG-ADL Observation.

The Questionnaire is data (questionnaires/mg-adl.json); the response answers its items by linkId
with the same local item codes the Observation's components carry, so either one gives back the
whole MG-ADL.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from mappings import versions
from mappings.context import MappingContext
from mappings.datatypes import date_time, patient_reference
from mappings.envelope import envelope
from mappings.errors import InvalidInput
from mappings.identifiers import BusinessKey
from mappings.records import MG_ADL_ITEMS, MgAdl, PatientRef

JSON = dict[str, Any]

QUESTIONNAIRE_FILE = Path(__file__).parent / "questionnaires" / "mg-adl.json"
TOTAL_LINK_ID = "total"


@cache
def _questionnaire() -> JSON:
    data: JSON = json.loads(QUESTIONNAIRE_FILE.read_text("utf-8"))
    return data


def mg_adl_questionnaire() -> JSON:
    """The MG-ADL Questionnaire resource (same JSON in R4 and R5), a copy to publish or serve."""
    return copy.deepcopy(_questionnaire())


def mg_adl_canonical() -> str:
    """The versioned canonical a response names in `questionnaire` (url|version)."""
    q = _questionnaire()
    return f"{q['url']}|{q['version']}"


def _item(link_id: str, value: int) -> JSON:
    source = next(i for i in _questionnaire()["item"] if i["linkId"] == link_id)
    # the item's text travels with the answer, so a reader without the Questionnaire sees it
    return {"linkId": link_id, "text": source["text"], "answer": [{"valueInteger": value}]}


def mg_adl_response(
    ctx: MappingContext,
    key: BusinessKey,
    patient: PatientRef,
    authored: datetime,
    mg_adl: MgAdl,
) -> JSON:
    """A completed QuestionnaireResponse of the MG-ADL: 8 items and the total."""
    qr = envelope("QuestionnaireResponse", ctx, key, patient_reported=True)
    versions.set_single_identifier(qr, ctx.fhir_version)
    qr["questionnaire"] = mg_adl_canonical()
    qr["status"] = "completed"
    qr["subject"] = patient_reference(patient)
    qr["authored"] = date_time(authored)
    qr["author"] = patient_reference(patient)
    qr["source"] = patient_reference(patient)
    qr["item"] = [
        *(_item(item, getattr(mg_adl, item)) for item in MG_ADL_ITEMS),
        _item(TOTAL_LINK_ID, mg_adl.total),
    ]
    return qr


def read_mg_adl_response(res: JSON, path: str) -> MgAdl:
    """The MgAdl a response of ours answers; its total must match the items."""
    if str(res.get("questionnaire", "")).split("|")[0] != _questionnaire()["url"]:
        raise InvalidInput(f"{path}.questionnaire: not the MG-ADL Questionnaire")
    answers: dict[str, int] = {}
    for item in res.get("item", []) or []:
        values = [a.get("valueInteger") for a in item.get("answer", []) or []]
        if len(values) != 1 or not isinstance(values[0], int):
            raise InvalidInput(f"{path}.item[{item.get('linkId')}]: one integer answer expected")
        answers[str(item.get("linkId"))] = values[0]
    missing = set(MG_ADL_ITEMS) - set(answers)
    if missing:
        raise InvalidInput(f"{path}: MG-ADL items missing: {sorted(missing)}")
    mg_adl = MgAdl(**{item: answers[item] for item in MG_ADL_ITEMS})
    if answers.get(TOTAL_LINK_ID, mg_adl.total) != mg_adl.total:
        raise InvalidInput(f"{path}: MG-ADL total does not match its items")
    return mg_adl
