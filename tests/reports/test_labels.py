"""Registry labels (class and feature names) in report figures: drawn as the text they are."""

from __future__ import annotations

from reports import ReportInputs, render_report
from tests.reports.conftest import figure_ids, figure_texts


def test_dollar_signs_in_registry_labels_are_text_not_mathtext() -> None:
    # "a$b$c" would be typeset as math and "$_$" would not parse at all.
    labels = ["a$b$c", "$_$", "price $"]
    evaluation = {
        "task": "multiclass",
        "classes": labels,
        "confusion_matrix": {"labels": labels, "matrix": [[3, 1, 0], [0, 4, 1], [1, 0, 5]]},
        "feature_importances": {"features": labels, "importances": [0.5, 0.3, 0.2]},
    }
    inputs = ReportInputs(
        model="m$x$", version=1, tags={"task": "multiclass", "estimator": "random_forest"}, evaluation=evaluation
    )
    html = render_report(inputs)
    assert "plot-confusion" in figure_ids(html) and "plot-importances" in figure_ids(html)
    for figure in ("plot-confusion", "plot-importances"):
        texts = figure_texts(html, figure)
        assert all(label in texts for label in labels), texts
    assert " is malformed" not in html
