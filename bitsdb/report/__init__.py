"""The HTML triage report (`bitsdb report`): one self-contained file a responder opens offline.

    ReportBuilder(verdict_source(ruleset))   collects records, builds the view-model (plain dicts)
    render_report(view) / write_report(view, path)   the page: Jinja2 + inline plotly.js + strict CSP

Rendering needs the optional extra `bitsdb[report]` (Jinja2, plotly); `check_dependencies()`
says so in one line before any evidence is read.
"""

from __future__ import annotations

from .render import MissingExtra, check_dependencies, read_data_block, render_report, write_report
from .verdicts import LEVELS, record_verdict_source, verdict_source
from .view import ReportBuilder

__all__ = ["LEVELS", "MissingExtra", "ReportBuilder", "check_dependencies", "read_data_block", "record_verdict_source",
           "render_report", "verdict_source", "write_report"]
