"""A comparison's "B − A" column: green or red only for a difference the report can show; zero, and any difference
that rounds to zero at the 4 decimals shown, is plain."""

from __future__ import annotations

import re

import pytest

from reports import ReportInputs, render_comparison


def _cell(metric: str, a: float, b: float) -> tuple[str, str]:
    """(class, text) of the difference cell of ``metric`` when A holds ``a`` and B holds ``b``."""
    html = render_comparison(
        ReportInputs(model="m", version=1, metrics={metric: a}), ReportInputs(model="m", version=2, metrics={metric: b})
    )
    row = re.search(rf"<tr><th>{re.escape(metric)}</th>(.*?)</tr>", html, re.DOTALL)
    assert row is not None
    cells = re.findall(r'<td class="([^"]*)">([^<]*)</td>', row[1])
    assert len(cells) == 3, cells
    return cells[-1][0].strip(), cells[-1][1]


@pytest.mark.parametrize("metric", ["accuracy", "log_loss"])
@pytest.mark.parametrize(
    ("a", "b"),
    [
        (0.5, 0.5),
        (0.0, -0.0),
        (0.3, 0.1 + 0.2),  # float noise: 5.6e-17
        (0.1 + 0.2, 0.3),  # and the other way: -5.6e-17
        (0.81234, 0.81236),  # +0.00002: both shown as 0.8123 / 0.8124 apart, but the difference shows as 0.0000
        (0.81236, 0.81234),
        (1234.5678, 1234.56784),  # large values: a difference of 4e-5
    ],
)
def test_a_difference_that_rounds_to_zero_is_neither_better_nor_worse(metric: str, a: float, b: float) -> None:
    assert _cell(metric, a, b) == ("num", "0.0000")


@pytest.mark.parametrize(
    ("metric", "a", "b", "expected"),
    [
        ("accuracy", 0.5, 0.50006, ("num better", "+0.0001")),
        ("accuracy", 0.50006, 0.5, ("num worse", "-0.0001")),
        ("log_loss", 0.5, 0.50006, ("num worse", "+0.0001")),
        ("log_loss", 0.50006, 0.5, ("num better", "-0.0001")),
        ("rmse", 100.0, 250.0, ("num worse", "+150")),
    ],
)
def test_the_smallest_difference_shown_is_judged(metric: str, a: float, b: float, expected: tuple[str, str]) -> None:
    assert _cell(metric, a, b) == expected


def test_a_difference_that_is_not_a_number_is_plain() -> None:
    assert _cell("accuracy", float("nan"), 0.5) == ("num", "nan")
    assert _cell("rmse", float("inf"), float("inf")) == ("num", "nan")
