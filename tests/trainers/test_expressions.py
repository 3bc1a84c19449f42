"""Spec expressions reach nothing outside the data: every polars reader, subqueries, CTEs, paths and URLs are refused
before polars sees the text (no file is opened, no URL fetched), and what is allowed computes what polars computes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from contract.errors import ErrorCode
from tests.conftest import SECRET_LINE, Bait
from trainers import SpecError, parse_spec, train
from trainers.expressions import MAX_LENGTH, ExpressionError, checked_sql, sql_expression

from .conftest import spec_text

# Every reader and scanner polars has: each is a table function its SQL may know, now or in a later version.
READERS = sorted(name for name in dir(pl) if name.startswith(("read_", "scan_")))

# Where a reader can stand: alone, in a subquery of IN, a scalar subquery, a CTE, EXISTS, ANY, a UNION, DuckDB's
# FROM-first query, quoted or upper-cased, inside an allowed function.
FORMS = (
    "{f}('{p}')",
    "\"{f}\"('{p}')",
    "{F}('{p}')",
    "abs({f}('{p}'))",
    "x IN (SELECT y FROM {f}('{p}'))",
    "x + (SELECT max(y) FROM {f}('{p}'))",
    "x IN (WITH t AS (SELECT * FROM {f}('{p}')) SELECT y FROM t)",
    "EXISTS (SELECT 1 FROM {f}('{p}'))",
    "x = ANY (SELECT y FROM {f}('{p}'))",
    "x IN (SELECT 1 UNION SELECT y FROM {f}('{p}'))",
    "x IN (FROM {f}('{p}'))",
)


def _refused(text: str) -> str:
    """The one-line refusal of a spec deriving a column from ``text``, through the public spec parser."""
    spec = spec_text("credit", "decision_tree", "binary", extra=f"[cleaning]\nderived = {{ r = {_toml(text)} }}\n")
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    error = caught.value
    assert error.code is ErrorCode.INVALID_ARGUMENT
    assert "\n" not in error.message
    assert error.message.startswith("[cleaning] derived: derived column 'r': "), error.message
    return error.message


def _toml(text: str) -> str:
    return "'''" + text + "'''" if "'''" not in text else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_the_threat_is_real_without_the_check(bait: Bait) -> None:
    # What the check stands in front of: polars' SQL opens the file and fetches the URL while it parses.
    with pytest.raises(pl.exceptions.PolarsError) as caught:
        pl.sql_expr(f"x IN (SELECT y FROM read_csv('{bait.file}'))")
    assert SECRET_LINE in str(caught.value)
    with pytest.raises((pl.exceptions.PolarsError, OSError)):
        pl.sql_expr(f"x IN (SELECT y FROM read_csv('{bait.url}'))")
    assert bait.requests()


@pytest.mark.parametrize("reader", READERS)
def test_every_polars_reader_is_refused_wherever_it_stands(reader: str, bait: Bait) -> None:
    for place in (str(bait.file), bait.url, f"file://{bait.file}", "s3://bucket/key.parquet"):
        for form in FORMS:
            text = form.format(f=reader, F=reader.upper(), p=place)
            message = _refused(text)
            assert reader in message.lower(), message
            assert SECRET_LINE not in message
            with pytest.raises(ExpressionError):
                sql_expression(text)
    assert bait.requests() == []


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("x IN (SELECT 1)", "a subquery"),
        ("(SELECT 1)", "a subquery"),
        ("x IN (WITH t AS (SELECT 1 AS y) SELECT y FROM t)", "a subquery"),
        ("x IN (TABLE t)", "a subquery"),
        ("x IN (VALUES (1))", "VALUES"),
        ("EXISTS (SELECT 1)", "EXISTS"),
        ("sum(x)", "the function sum()"),
        ("max(x) OVER ()", "a window (OVER)"),
        ("now()", "the function now()"),
        ("random()", "the function rand()"),
        ("getenv('HOME')", "the function getenv()"),
        ("load_extension('x')", "the function load_extension()"),
        ("*", "*"),
        ("t.x", "the qualified name"),
        ("x AS y", "Alias"),
        ("CAST(x AS STRUCT(a INT))", "a cast to STRUCT"),
        ("x + INTERVAL '1 day'", "INTERVAL"),
        ("[1, 2]", "an array"),
        ("x; SELECT 1", "a second statement after ;"),
        ("x + $1", "the parameter"),
        ("x + ?", "the placeholder"),
        ("$$/etc/passwd$$", "$$…$$ strings"),
        ("E'/etc/passwd'", "E'…' strings"),
        ("N'x'", "N'…' strings"),
        ("", "empty"),
        ("x +* 2", "cannot parse"),
        ("'unclosed", "cannot parse"),
        ("(" * 60 + "x" + ")" * 60, "nested too deeply"),
        ("x + " * MAX_LENGTH + "x", f"at most {MAX_LENGTH}"),
    ],
)
def test_anything_else_is_refused_with_one_line_naming_it(text: str, named: str) -> None:
    assert named in _refused(text)


def test_comments_never_reach_polars() -> None:
    # Whatever a comment holds, polars gets the tokens that were checked, written back without it.
    assert checked_sql("x /* IN (SELECT y FROM read_csv('/etc/passwd')) */ + 1") == "x + 1"
    assert checked_sql("/* /* */ x IN (SELECT 1) */ 1") == "1"
    assert checked_sql("x -- ; SELECT 1\n + 1") == "x + 1"
    # Strings and quoted names are quoted again the one way both parsers read alike.
    assert checked_sql("'it''s' || \"we\"\"ird\" || 'a\\'") == "'it''s' || \"we\"\"ird\" || 'a\\'"


FRAME = pl.DataFrame(
    {
        "x": [1.5, -2.25, None],
        "i": [3, 4, 5],
        "s": ["Abc", " de ", None],
        "b": [True, False, None],
        "d": [dt.date(2020, 1, 2), dt.date(2021, 5, 6), None],
        "two words": [1, 2, 3],
    }
)
ALLOWED = [
    "x / i",
    "i // 2",
    "i % 2",
    "(x * 2 + 1) - -x",
    "abs(x) + sign(x)",
    "sqrt(i) + cbrt(i) + exp(x) + ln(i) + log10(i) + log2(i) + log(2, i) + log1p(i)",
    "pow(i, 2) + power(i, 0.5)",
    "round(x) + round(x, 1) + floor(x) + ceil(x) + ceiling(x)",
    "greatest(x, i) - least(x, i)",
    "sin(x) + cos(x) + tan(x) + cot(i) + asin(0.5) + acos(0.5) + atan(x) + atan2(x, i)",
    "degrees(x) + radians(x) + pi()",
    "coalesce(x, 0) + ifnull(x, 1) + nullif(i, 3)",
    "CASE WHEN x > 0 THEN 'p' WHEN x IS NULL THEN 'm' ELSE 'n' END",
    "CASE i WHEN 3 THEN 'a' ELSE 'b' END",
    "IF(x > 0, 1, 0)",
    "x IS NULL OR x IS NOT NULL AND b IS TRUE",
    "b IS NOT DISTINCT FROM TRUE",
    "i BETWEEN 3 AND 4 AND i IN (3, 5) AND i NOT IN (4)",
    "s LIKE 'A%' OR s ILIKE 'a%' OR s NOT LIKE '%e%'",
    "i <> 3 AND i != 4 AND i = 5 AND i >= 4 AND i <= 5 AND i > 1 AND i < 9",
    "CAST(i AS DOUBLE) + CAST(x AS INTEGER) + CAST(b AS INT) + i::float + CAST(x AS BIGINT)",
    "CAST(i AS VARCHAR) || CAST(i AS TEXT)",
    "TRY_CAST(s AS INTEGER)",
    "lower(s) || upper(s) || trim(s) || ltrim(s) || rtrim(s)",
    "length(s) + char_length(s) + octet_length(s) + strpos(s, 'b')",
    "substr(s, 1, 2) || substring(s, 2) || left(s, 2) || right(s, 2) || reverse(s) || initcap(s)",
    "concat(s, 'x') || concat_ws('-', s, 'x') || replace(s, 'b', 'B') || split_part(s, 'b', 1)",
    "lpad(s, 5) || rpad(s, 5) || regexp_replace(s, 'b', 'B')",
    "starts_with(s, 'A') OR ends_with(s, 'c') OR regexp_like(s, '^A')",
    "EXTRACT(year FROM d) + date_part('month', d) + extract(dow FROM d)",
    "strftime(d, '%Y')",
    '"two words" + .5 + 5. + 1e3',
    "'/etc/passwd' || upper('http://169.254.169.254/latest/meta-data')",
    "NOT b AND TRUE OR NULL",
]


@pytest.mark.parametrize("text", ALLOWED)
def test_allowed_expressions_compute_what_polars_computes(text: str) -> None:
    # The canonical text polars compiles means what the text the user wrote means.
    expected = FRAME.select(pl.sql_expr(text).alias("z"))
    assert FRAME.select(sql_expression(text).alias("z")).equals(expected)


def test_a_derived_column_is_a_feature_and_the_spec_keeps_its_text_as_written(frames: dict[str, pl.DataFrame]) -> None:
    text = "debt /   nullif(income, 0)  -- per unit of income"
    extra = f"[cleaning]\nderived = {{ ratio = {_toml(text)} }}\n"
    spec = parse_spec(
        spec_text("credit", "decision_tree", "binary", extra=extra).replace("numeric = [", 'numeric = ["ratio", ')
    )
    assert spec.cleaning.derived == {"ratio": text}
    result = train(spec, frames["credit"], dataset_version="e" * 16)
    assert result.inputs[0].name == "ratio"
    inputs = result.test_inputs
    # Missing debts or incomes give missing ratios (imputed inside the graph, after the test split is taken).
    np.testing.assert_allclose(inputs["ratio"], inputs["debt"] / inputs["income"], rtol=1e-5)
