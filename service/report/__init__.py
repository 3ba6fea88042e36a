"""The clinician's report: MG-ADL and symptom ratings over time against the infusion cycle."""

from service.report.chart import ImageFormat, draw
from service.report.data import (
    DEFAULT_SYMPTOMS,
    ReportData,
    UnknownSymptom,
    build_report,
    chartable_symptoms,
    cycle_table,
    days_to_next_infusion,
    parse_symptoms,
)
from service.report.page import CONTENT_SECURITY_POLICY, render_page

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DEFAULT_SYMPTOMS",
    "ImageFormat",
    "ReportData",
    "UnknownSymptom",
    "build_report",
    "chartable_symptoms",
    "cycle_table",
    "days_to_next_infusion",
    "draw",
    "parse_symptoms",
    "render_page",
]
