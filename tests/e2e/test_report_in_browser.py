"""The clinician's report rendered by a real headless browser, offline, from a live server."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from PIL import Image

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.integration  # needs the real FHIR server, and chromium

WIDTH, HEIGHT = 1200, 900


def test_chromium_renders_the_report_with_its_chart(
    live_server: LiveServer,
    report_patient: str,
    run_chromium: Callable[..., CompletedProcess[str]],
    artifacts: Path,
) -> None:
    url = f"{live_server.url}/patients/{report_patient}/report"
    before = len(live_server.paths)

    dom = run_chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert re.search(r'<figure id="report-chart"[^>]*>\s*<svg', html)
    assert "90 diary entries" in html and "5 infusions" in html
    assert '<table id="cycle-table">' in html
    # breathing and swallowing are shown without being asked for
    assert '<table id="danger-signs">' in html and "MG-ADL breathing (0-3)" in html
    # the page asked for nothing more than itself: no images, scripts, fonts or icons
    assert live_server.paths[before:] == [f"/patients/{report_patient}/report"]

    shot = artifacts / "report_page.png"
    shot.unlink(missing_ok=True)
    result = run_chromium(f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        rgb = image.convert("RGB")
        colours = {colour for _, colour in rgb.getcolors(maxcolors=1 << 20) or []}
    # the chart's own colours are on screen: the infusion bands and the MG-ADL line
    assert any(_near(c, (0x7B, 0x61, 0xC4), 60) for c in colours), "no infusion band drawn"
    assert any(_near(c, (0x15, 0x65, 0xC0), 40) for c in colours), "no MG-ADL line drawn"


def test_the_chart_alone_as_png_opens_in_the_browser(
    live_server: LiveServer,
    report_patient: str,
    run_chromium: Callable[..., CompletedProcess[str]],
    artifacts: Path,
) -> None:
    shot = artifacts / "report_chart_png.png"
    shot.unlink(missing_ok=True)
    url = f"{live_server.url}/patients/{report_patient}/report?format=png&symptoms=fatigue,ptosis"
    result = run_chromium(f"--screenshot={shot}", f"--window-size={WIDTH},{HEIGHT}", url)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (WIDTH, HEIGHT)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def _near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target, strict=True))
