"""The first trees of a tree model, drawn from the evaluation document's ``trees`` (see ``trainers._trees``): each
split with its condition, each leaf with its class probabilities or value, and the depth cap said on the plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes

from reports._svg import Plot, new_figure, to_svg

__all__ = ["leaf_text", "tree_plots"]

_SPLIT = {"boxstyle": "round,pad=0.35", "facecolor": "#eff6ff", "edgecolor": "#93c5fd", "linewidth": 0.8}
_LEAF = {"boxstyle": "round,pad=0.35", "facecolor": "#f0fdf4", "edgecolor": "#86efac", "linewidth": 0.8}
_CUT = {
    "boxstyle": "round,pad=0.35",
    "facecolor": "#f9fafb",
    "edgecolor": "#d1d5db",
    "linewidth": 0.8,
    "linestyle": "--",
}
_MAX_LABEL = 18


def _short(text: str) -> str:
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


def _size(node: Mapping[str, Any]) -> str:
    if "samples" in node:
        return f"n = {node['samples']}"
    return f"cover = {float(node.get('cover', 0.0)):.4g}"


def leaf_text(node: Mapping[str, Any], kind: str, classes: Sequence[str]) -> str:
    """What a leaf box says: one ``class: probability`` line per class (3 decimals), or the leaf's value."""
    value = node.get("value")
    lines = ["deeper splits summarised"] if node.get("truncated") else []
    if value is not None:
        if kind == "probabilities" and len(value) == len(classes):
            lines += [f"{_short(str(c))}: {float(p):.3f}" for c, p in zip(classes, value, strict=True)]
        elif kind == "probabilities":
            lines.append("p = [" + ", ".join(f"{float(p):.3f}" for p in value) + "]")
        else:
            lines.append(f"value = {float(value[0]):.4g}")
    lines.append(_size(node))
    return "\n".join(lines)


def _layout(
    node: Mapping[str, Any], depth: int, next_x: list[float], out: list[tuple[Mapping[str, Any], float, int]]
) -> float:
    """In-order placement: leaves one unit apart, each split centred over its children. Appends (node, x, depth)."""
    if "left" not in node:
        x = next_x[0]
        next_x[0] += 1.0
    else:
        x = (_layout(node["left"], depth + 1, next_x, out) + _layout(node["right"], depth + 1, next_x, out)) / 2
    out.append((node, x, depth))
    return x


def _draw(ax: Axes, root: Mapping[str, Any], kind: str, classes: Sequence[str]) -> tuple[float, int, bool]:
    placed: list[tuple[Mapping[str, Any], float, int]] = []
    width = 0.0
    next_x = [0.0]
    _layout(root, 0, next_x, placed)
    width = next_x[0]
    where = {id(node): (x, depth) for node, x, depth in placed}
    levels = max(depth for _, _, depth in placed)
    truncated = False
    for node, x, depth in placed:
        if "left" in node:
            for child, answer in ((node["left"], "yes"), (node["right"], "no")):
                cx, cdepth = where[id(child)]
                ax.plot([x, cx], [-depth, -cdepth], color="#9ca3af", linewidth=0.8, zorder=1)
                ax.text(
                    (x + cx) / 2,
                    -(depth + cdepth) / 2,
                    answer,
                    fontsize=6,
                    color="#6b7280",
                    ha="center",
                    va="center",
                    backgroundcolor="white",
                    zorder=2,
                )
            condition = f"{_short(str(node['feature']))} {node.get('operator', '<=')} {float(node['threshold']):.4g}"
            text = f"{condition}\n{_size(node)}"
            style = _SPLIT
        else:
            truncated = truncated or bool(node.get("truncated"))
            text, style = leaf_text(node, kind, classes), _CUT if node.get("truncated") else _LEAF
        ax.text(x, -depth, text, ha="center", va="center", fontsize=6.5, bbox=style, zorder=3)
    ax.set_xlim(-0.7, width - 0.3)
    ax.set_ylim(-levels - 0.6, 0.6)
    ax.axis("off")
    return width, levels, truncated


def tree_plots(evaluation: Mapping[str, Any]) -> list[Plot]:
    """One plot per stored tree: ``plot-tree-0``, ``plot-tree-1``, …"""
    trees = evaluation.get("trees")
    if not trees or not trees.get("trees"):
        return []
    kind = trees.get("values", "value")
    classes = [str(c) for c in evaluation.get("classes") or []]
    cap, total = trees.get("max_depth"), trees.get("total")
    plots = []
    for position, tree in enumerate(trees["trees"]):
        root = tree["root"]
        leaves = _count_leaves(root)
        with new_figure(min(24.0, max(6.0, 1.35 * leaves)), 1.2 + 1.25 * (_depth(root) + 1)) as figure:
            ax = figure.add_subplot()
            _, _, truncated = _draw(ax, root, kind, classes)
            title = f"Tree {int(tree.get('index', position)) + 1} of {total}"
            if tree.get("class") is not None:
                title += f", scoring class {tree['class']}"
            title += f" (drawn to depth {cap}" + ("; deeper splits summarised)" if truncated else ")")
            ax.set_title(title)
            what = {
                "probabilities": "class probabilities of the training rows reaching each leaf",
                "value": "each leaf's output (a regression prediction, or a boosted tree's raw-score contribution)",
            }.get(kind, "each leaf's value")
            caption = (
                f"{title}. Rows meeting a node's condition go left (yes). Leaves show {what}; "
                f"splits below depth {cap} are not drawn."
            )
            plots.append(to_svg(figure, f"plot-tree-{position}", caption))
    return plots


def _count_leaves(node: Mapping[str, Any]) -> int:
    return _count_leaves(node["left"]) + _count_leaves(node["right"]) if "left" in node else 1


def _depth(node: Mapping[str, Any]) -> int:
    return 1 + max(_depth(node["left"]), _depth(node["right"])) if "left" in node else 0
