"""Presentation of typed results (``runner.engine.results``); nothing here measures.

export.py    the exporter interface and ``write_report`` (every file written atomically)
markdown.py  report.md, the single source of the text;  html.py  report.html rendered from it
csv.py       summary.csv;  terminal.py  the rich tables on stderr (runs, comparisons, compare)
charts.py    the one chart type and every chart;  format.py  all number formatting
verdicts.py  conclusions in words, drawn from the figures;  compare.py  regressions between files
presets.py   the Markdown sections of the article's presets
"""
