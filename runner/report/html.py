"""``report.html``: the Markdown report rendered to one self-contained page, charts embedded as data
URIs (no network needed to view it). Rendered from the Markdown, so the two never disagree."""

from __future__ import annotations

import base64

from runner.engine.results import BenchResults
from runner.extras import needs_extra
from runner.report.charts import Chart
from runner.report.markdown import markdown_report

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; display: block; margin: 0.5em 0 1.5em; }
h1 { border-bottom: 2px solid #444; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
"""


class HtmlExporter:
    filename = "report.html"

    def wanted(self, doc: BenchResults) -> bool:
        return True

    def render(self, doc: BenchResults, charts: list[Chart]) -> str:
        with needs_extra("report"):
            import markdown

        images = {c.name: "data:image/png;base64," + base64.b64encode(c.png).decode("ascii") for c in charts}
        body = markdown.markdown(markdown_report(doc, images, charts), extensions=["tables"])
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>runner bench report</title>"
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n"
        )
