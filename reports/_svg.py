"""Matplotlib figures as inline SVG: text kept as ``<text>`` elements, no prolog, ids unique per plot."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib
from cycler import cycler
from matplotlib.figure import Figure

__all__ = ["PALETTE", "Plot", "new_figure", "to_svg"]

# Colour-blind-safe (Okabe-Ito) colours, in the order series are drawn.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

_STYLE: dict[Any, Any] = {
    # A browser test reads labels and annotations as text: never turn glyphs into paths.
    "svg.fonttype": "none",
    # Labels are registry data (feature and class names): a `$` in one is a character, never mathtext to typeset.
    "text.parse_math": False,
    # Every <text> names its fonts: a short list keeps the page small (DejaVu Sans ships with matplotlib).
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,  # grid lines behind bars, not across them
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.6,
    "axes.edgecolor": "#9ca3af",
    "axes.prop_cycle": cycler(color=PALETTE),
    "legend.frameon": False,
    "legend.fontsize": 8.0,
}
# rcParams are process-global: a figure drawn while another thread's rc_context is entered or left would take the
# other's settings (text as paths, say). A dashboard renders reports on worker threads, so figures take turns.
_DRAWING = threading.RLock()
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_ID = re.compile(r'\bid="([^"]+)"')
_HREF = re.compile(r'(xlink:href|href)="#([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")


@dataclass(frozen=True)
class Plot:
    """One figure of a report: its element id (``plot-roc``), caption, and SVG markup."""

    id: str
    caption: str
    svg: str


@contextmanager
def new_figure(width: float = 6.4, height: float = 4.0) -> Iterator[Figure]:
    """A figure drawn in the report's style (no pyplot: figures are plain objects, safe in a server's threads)."""
    with _DRAWING, matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(width, height), layout="constrained")
        yield figure


def to_svg(figure: Figure, plot_id: str, caption: str) -> Plot:
    """Render ``figure`` as SVG for inlining: XML prolog, DOCTYPE and metadata dropped (the DOCTYPE names a URL),
    and every internal id prefixed with ``plot_id`` so that several plots on one page never share one."""
    buffer = io.StringIO()
    with _DRAWING, matplotlib.rc_context({**_STYLE, "svg.hashsalt": plot_id}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = _METADATA.sub("", _PROLOG.sub("", buffer.getvalue(), count=1))
    text = _ID.sub(lambda m: f'id="{plot_id}-{m[1]}"', text)
    text = _HREF.sub(lambda m: f'{m[1]}="#{plot_id}-{m[2]}"', text)
    text = _URL.sub(lambda m: f"url(#{plot_id}-{m[1]})", text)
    return Plot(plot_id, caption, text.strip())
