"""The HTML report in a real browser: no errors, every chart decoded and visible."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import chromium, inspect_page

needs_chromium = pytest.mark.skipif(
    chromium() is None and not os.environ.get("CI"),
    reason="Chromium is not installed (apt-get install chromium); .ci/run installs it, so CI always runs this",
)


@needs_chromium
def test_html_report_opens_without_errors_and_shows_every_chart(sweep_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    page = inspect_page((sweep_dir / "report.html").resolve().as_uri(), shot)
    assert page["errors"] == []
    charts = list((sweep_dir / "charts").glob("*.png"))
    assert len(page["images"]) == len(charts) >= 4
    for image in page["images"]:
        assert image["complete"] and image["width"] > 300 and image["height"] > 200, image
    with Image.open(shot) as picture:
        width, height = picture.size
        assert width >= 1000 and height > 2000  # the whole page, charts included
        colours = picture.convert("RGB").resize((64, 256)).getcolors(64 * 256) or []
        assert len(colours) > 50  # not a blank page
