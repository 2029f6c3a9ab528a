"""Presentation of results: terminal tables, Markdown, HTML and CSV documents, charts, verdicts, compare."""
