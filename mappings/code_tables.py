"""The code data files in mappings/codes, loaded once into typed, frozen values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from mappings.errors import CodeTableError, UnknownCode

CODE_FILES: tuple[str, ...] = ("loinc", "snomed", "ucum", "hl7", "atc", "local")


@dataclass(frozen=True)
class Code:
    """One code from a data file: system, code, display and where it was verified."""

    system: str
    code: str
    display: str
    source: str
    names: tuple[str, ...] = ()  # atc.yaml: the words that name the substance


@dataclass(frozen=True)
class CodeTable:
    """One data file: sections of keyed codes."""

    name: str
    sections: dict[str, dict[str, Code]]

    def get(self, section: str, key: str) -> Code:
        """The code under section/key; UnknownCode names the file and key when absent."""
        try:
            return self.sections[section][key]
        except KeyError:
            raise UnknownCode(f"{self.name}.yaml has no entry {section}.{key}") from None

    def key_of(self, section: str, system: str | None, code: str | None) -> str | None:
        """The key whose code matches system|code in a section, or None."""
        for key, entry in self.sections.get(section, {}).items():
            if entry.system == system and entry.code == code:
                return key
        return None


def _parse(name: str, raw: Any) -> CodeTable:
    if not isinstance(raw, dict):
        raise CodeTableError(f"{name}.yaml: top level must be a mapping")
    default_system = raw.get("system")
    sections: dict[str, dict[str, Code]] = {}
    for section, entries in raw.items():
        if section == "system":
            continue
        if not isinstance(entries, dict):
            raise CodeTableError(f"{name}.yaml: section {section} must be a mapping")
        parsed: dict[str, Code] = {}
        for key, entry in entries.items():
            where = f"{name}.yaml {section}.{key}"
            if not isinstance(entry, dict):
                raise CodeTableError(f"{where}: entry must be a mapping")
            system = entry.get("system", default_system)
            fields = {"system": system, **{f: entry.get(f) for f in ("code", "display", "source")}}
            for field_name, value in fields.items():
                if not isinstance(value, str) or not value:
                    raise CodeTableError(f"{where}: missing or empty {field_name}")
            names = entry.get("names", [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise CodeTableError(f"{where}: names must be a list of words")
            parsed[str(key)] = Code(
                system=str(system),
                code=str(entry["code"]),
                display=str(entry["display"]),
                source=str(entry["source"]),
                names=tuple(n.lower() for n in names),
            )
        sections[str(section)] = parsed
    return CodeTable(name=name, sections=sections)


@cache
def table(name: str) -> CodeTable:
    """The parsed data file mappings/codes/<name>.yaml (loaded once)."""
    if name not in CODE_FILES:
        raise UnknownCode(f"no code file {name}.yaml")
    text = resources.files("mappings.codes").joinpath(f"{name}.yaml").read_text("utf-8")
    return _parse(name, yaml.safe_load(text))


def code(name: str, section: str, key: str) -> Code:
    """Shorthand for table(name).get(section, key)."""
    return table(name).get(section, key)


def symptom_code(symptom: str) -> Code:
    """The code for a named symptom: SNOMED CT where verified, else our local code."""
    for name in ("snomed", "local"):
        entry = table(name).sections.get("symptoms", {}).get(symptom)
        if entry is not None:
            return entry
    raise UnknownCode(f"snomed.yaml / local.yaml have no entry symptoms.{symptom}")


def symptom_key(system: str | None, code_value: str | None) -> str | None:
    """The symptom name for a coding, searching SNOMED then local symptom codes."""
    for name in ("snomed", "local"):
        key = table(name).key_of("symptoms", system, code_value)
        if key is not None:
            return key
    return None


# Words a medication name may carry besides the substance and still name that one substance:
# salts, strengths and dose forms. Any other word (a second substance, "and", "with", a brand
# we do not know) leaves the name uncoded, so a combination is never coded as one substance.
_NAME_NOISE = frozenset(
    {
        "bromide",
        "hydrochloride",
        "hcl",
        "dihydrochloride",
        "sodium",
        "phosphate",
        "succinate",
        "sulfate",
        "acetate",
        "tablet",
        "tablets",
        "tab",
        "tabs",
        "capsule",
        "capsules",
        "cap",
        "oral",
        "solution",
        "syrup",
        "suspension",
        "liquid",
        "injection",
        "infusion",
        "iv",
        "intravenous",
        "modified",
        "prolonged",
        "extended",
        "release",
        "sr",
        "er",
        "xl",
        "mr",
        "retard",
        "film",
        "coated",
        "effervescent",
        "soluble",
        "dispersible",
        "mg",
        "g",
        "mcg",
        "ug",
        "ml",
    }
)


def substance_code(name: str | None) -> Code | None:
    """The ATC code of a medication name that names exactly one substance we know, else None."""
    if not name:
        return None
    words = [w for w in re.findall(r"[a-z]+", name.lower()) if w not in _NAME_NOISE]
    if re.search(r"[+/&]", name) or len(words) != 1:
        return None
    for entry in table("atc").sections.get("substances", {}).values():
        if words[0] in entry.names:
            return entry
    return None
