"""Conduit's model reports: self-contained HTML pages built from what the registry stores about a version.

``ReportInputs.of`` gathers a version, its attachments and its data set version (with its profile);
``render_report`` turns one into a page (summary, data set profile, metrics, evaluation plots, trees, training
dynamics, search history, spec, environment, log) and ``render_comparison`` sets two side by side. Plots are
matplotlib SVG inlined with their text as text; the pages fetch nothing, so they open offline.
"""

from reports._compare import render_comparison
from reports._inputs import ATTACHMENTS, ReportInputs
from reports._render import render_report
from reports._svg import Plot

__all__ = ["ATTACHMENTS", "Plot", "ReportInputs", "render_comparison", "render_report"]
