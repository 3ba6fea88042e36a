"""GET /Questionnaire/{id}: the Questionnaires our QuestionnaireResponses answer (definitions,
no patient data, so no credentials), published beside the responses that name them."""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Blueprint, Response

from mappings.questionnaire import mg_adl_questionnaire
from service.api.errors import ApiError

bp = Blueprint("questionnaires", __name__)


@bp.get("/Questionnaire/<questionnaire_id>")
def questionnaire(questionnaire_id: str) -> Response:
    """The MG-ADL Questionnaire (the same JSON in R4 and R5); 404 for any other id."""
    body = mg_adl_questionnaire()
    if questionnaire_id != body["id"]:
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such Questionnaire")
    return Response(json.dumps(body), mimetype="application/fhir+json")
