"""Our local CodeSystems as FHIR CodeSystem resources, built from codes/local.yaml.

Published so a clinic's server (and its users) can look up what a local code means. Their
canonical urls are the systems our resources carry, under the deployment's canonical base
(mappings.canonical); the default base is a name, not a resolvable address, which the
descriptions then say.
"""

from __future__ import annotations

from typing import Any

from mappings import canonical, code_tables

JSON = dict[str, Any]

LOCAL_CODESYSTEM_PREFIX = "https://diarybridge.dev/fhir/CodeSystem/"
# Bump when a published definition changes, so servers keep the history per version.
VERSION = "1"

_LOCAL_NOTE = (
    " The canonical url names DiaryBridge's local code system; it is an identifier, not an "
    "address a reader can resolve: this resource is the definition."
)

_DESCRIPTIONS: dict[str, str] = {
    "mg-diary": (
        "Codes of the DiaryBridge myasthenia gravis patient diary where no standard code was "
        "found: the MG Activities of Daily Living (MG-ADL) scale (Wolfe et al., Neurology "
        "1999) as eight items, each 0-3 (0 normal, 3 most impaired), and its total 0-24; "
        "patient-rated fatigue and overall weakness 0-10; flare-ups; free-text notes. The "
        "validated MG-ADL asks about the past 7 days; a diary entry is the patient's rating at "
        "the time of the entry (a daily diary), so a single value is a same-day rating, not "
        "the 7-day recall score; a clinician may compare it with the clinic's MG-ADL only "
        "with that in mind."
    ),
    "venous-access": "The kind of venous access an IVIG infusion was given through.",
    "provenance": (
        "Tags on resources whose content the patient reported themselves (a diary), as "
        "opposed to data recorded by a clinician."
    ),
}

_TITLES: dict[str, str] = {
    "mg-diary": "DiaryBridge MG patient diary codes",
    "venous-access": "DiaryBridge venous access codes",
    "provenance": "DiaryBridge provenance tags",
}

_ITEM_DEFINITION = (
    "MG-ADL item, scored 0 (normal) to 3 (most impaired). Rated by the patient for the time of "
    "the diary entry, not over the MG-ADL's 7-day recall."
)
_TOTAL_DEFINITION = (
    "Sum of the eight MG-ADL items, 0-24 (higher is worse). From a daily diary entry, not the "
    "MG-ADL's 7-day recall."
)


def code_system_id(url: str) -> str:
    """The resource id of a local CodeSystem: the last segment of its canonical url."""
    return url.rsplit("/", 1)[-1]


def _definition(section: str, key: str, display: str) -> str:
    if section == "mg_adl_items":
        return _ITEM_DEFINITION
    if section == "observations" and key == "mg_adl_total":
        return _TOTAL_DEFINITION
    return display


def code_systems(base: str | None = None) -> list[JSON]:
    """One CodeSystem resource per local system (id = last url segment), codes in file order,
    under base (default: the deployment's canonical base)."""
    base = canonical.configured() if base is None else base
    note = _LOCAL_NOTE if base == canonical.DEFAULT_CANONICAL_BASE else ""
    concepts: dict[str, list[JSON]] = {}
    for section, entries in code_tables.table("local").sections.items():
        for key, entry in entries.items():
            if not entry.system.startswith(LOCAL_CODESYSTEM_PREFIX):
                continue
            concepts.setdefault(entry.system, []).append(
                {
                    "code": entry.code,
                    "display": entry.display,
                    "definition": _definition(section, key, entry.display),
                }
            )
    out: list[JSON] = []
    for url, concept in concepts.items():
        cs_id = code_system_id(url)
        out.append(
            {
                "resourceType": "CodeSystem",
                "id": cs_id,
                "url": canonical.codesystem_url(url, base),
                "version": VERSION,
                "name": "DiaryBridge" + "".join(p.capitalize() for p in cs_id.split("-")),
                "title": _TITLES.get(cs_id, cs_id),
                "status": "active",
                "experimental": False,
                "publisher": "DiaryBridge",
                "description": _DESCRIPTIONS.get(cs_id, "DiaryBridge local codes.") + note,
                "caseSensitive": True,
                "content": "complete",
                "count": len(concept),
                "concept": concept,
            }
        )
    return out


def code_system(cs_id: str, base: str | None = None) -> JSON | None:
    """The local CodeSystem with this id, or None."""
    return next((cs for cs in code_systems(base) if cs["id"] == cs_id), None)
