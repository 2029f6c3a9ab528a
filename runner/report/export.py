"""One interface for every report format, and the function that writes them all.

An exporter turns the typed results (and the charts drawn from them) into one file's text; the
formats are picked from a plain ``name -> exporter`` dict. Every file is written atomically
(``runner.engine.outputs.atomic_write``): a report is whole or absent, never half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from runner.engine.outputs import atomic_write
from runner.engine.results import BenchResults
from runner.report.charts import Chart, charts


class Exporter(Protocol):
    filename: str

    def wanted(self, doc: BenchResults) -> bool:
        """Whether this document has anything for the format (a CSV of cells needs cells)."""
        ...

    def render(self, doc: BenchResults, charts: list[Chart]) -> str: ...


def exporters() -> dict[str, Exporter]:
    from runner.report.csv import CsvExporter
    from runner.report.html import HtmlExporter
    from runner.report.markdown import MarkdownExporter

    return {"markdown": MarkdownExporter(), "html": HtmlExporter(), "csv": CsvExporter()}


def write_report(doc: BenchResults, out_dir: Path) -> list[Path]:
    """report.md (charts as PNG files in charts/), report.html (charts inside), summary.csv."""
    made = charts(doc)
    if made:
        (out_dir / "charts").mkdir(parents=True, exist_ok=True)
        for chart in made:
            atomic_write(out_dir / "charts" / f"{chart.name}.png", chart.png)
    written = []
    for exporter in exporters().values():
        if exporter.wanted(doc):
            written.append(atomic_write(out_dir / exporter.filename, exporter.render(doc, made)))
    return written
