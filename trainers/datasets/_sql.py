"""Reading data sets from SQL databases through SQLAlchemy (SQLite, PostgreSQL, any URL with an installed driver)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from trainers._errors import DatasetError, first_line
from trainers.datasets._cleaning import DEFAULT_NULL_VALUES
from trainers.datasets._files import check_frame, conflicting_column

__all__ = ["read_sql", "redact_url"]

_SECRET_QUERY_KEYS = re.compile(r"pass|secret|token|key", re.IGNORECASE)
_USERINFO = re.compile(r"//[^/@]*@")


def read_sql(query: str, url: str, *, null_values: Sequence[str] = DEFAULT_NULL_VALUES) -> pl.DataFrame:
    """Run ``query`` on the database at SQLAlchemy ``url`` and return its rows (canonical dtypes).

    Every row is read before a column's type is chosen; numbers mixed with text make a text column. Text values
    equal to one of ``null_values`` are missing.

    Raises:
        DatasetError: a bad URL or missing driver, an SQLite file that does not exist, a failing query, no rows or
            no columns, or a column whose values no single type can hold. Messages never show the password.
    """
    shown = redact_url(url)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DatasetError(f"{shown}: not a database URL (e.g. sqlite:///data.db, postgresql+psycopg://…)") from None
    # SQLite would create a missing file and then report a missing table.
    database = parsed.database or ":memory:"
    if parsed.get_backend_name() == "sqlite" and database != ":memory:" and not Path(database).is_file():
        raise DatasetError(f"{shown}: no such SQLite database file")
    try:
        engine = sa.create_engine(parsed)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        raise DatasetError(f"{shown}: {first_line(error)}") from None
    try:
        with engine.connect() as connection:
            try:
                frame = pl.read_database(sa.text(query), connection, infer_schema_length=None)
            except pl.exceptions.PolarsError as error:
                result = connection.execute(sa.text(query))
                conflict = conflicting_column(list(result.keys()), result)
                reason = f"cannot infer a type: {conflict}" if conflict else first_line(error)
                raise DatasetError(f"query on {shown}: {reason}") from None
    except sa.exc.SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        raise DatasetError(f"query on {shown} failed: {first_line(cause)}") from None
    finally:
        engine.dispose()
    return check_frame(frame, f"query on {shown}", null_values=null_values)


def redact_url(url: str) -> str:
    """``url`` without its password (user kept) nor query parameters that look like secrets, for messages and logs."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        return _USERINFO.sub("//", url)  # not a URL SQLAlchemy knows: drop everything that could be credentials
    secrets = [key for key in parsed.query if _SECRET_QUERY_KEYS.search(key)]
    # _replace is SQLAlchemy's documented way to set a part to None; set() ignores None.
    return parsed._replace(password=None).difference_update_query(secrets).render_as_string(hide_password=False)
