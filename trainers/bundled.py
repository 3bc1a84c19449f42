"""Data sets that ship with Conduit, so demos and tests run offline: four from scikit-learn's wheel and ``credit``.

``credit`` is generated (deterministically) with string categories, missing values, a date column and repeated
customers, so cleaning, encoding and every split method have something to do.

    >>> from trainers import bundled
    >>> bundled.write("credit", "credit.csv")   # then: conduit datasets import credit.csv --name credit
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from trainers._errors import DatasetError

__all__ = ["BUNDLED", "BundledDataset", "load", "write"]


@dataclass(frozen=True)
class BundledDataset:
    """A bundled data set: what it is, its target column and the task it suits."""

    name: str
    summary: str
    target: str
    task: str
    load: Callable[[], pl.DataFrame]


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _sklearn(loader: str, target: str, labels: bool, **options: bool) -> Callable[[], pl.DataFrame]:
    def load() -> pl.DataFrame:
        from sklearn import datasets

        data = getattr(datasets, loader)(**options)
        frame = pl.DataFrame({_snake(str(n)): data.data[:, i] for i, n in enumerate(data.feature_names)})
        values = [str(data.target_names[t]) for t in data.target] if labels else data.target
        return frame.with_columns(pl.Series(target, values))

    return load


def credit(rows: int = 2000, seed: int = 20240601) -> pl.DataFrame:
    """A synthetic credit-default table: ``default`` (0/1) from age, income, debt, city, employment and more."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 76, rows)
    income = np.round(rng.lognormal(10.8, 0.45, rows), 2)
    debt = np.round(income * rng.beta(2.0, 5.0, rows) * 1.5, 2)
    cities = ["paris", "lyon", "marseille", "toulouse", "lille", "nantes"]
    city = rng.choice(cities, rows, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1])
    jobs = ["salaried", "self_employed", "unemployed", "retired"]
    employment = rng.choice(jobs, rows, p=[0.62, 0.18, 0.08, 0.12])
    months = rng.integers(0, 241, rows)
    mortgage = rng.random(rows) < 0.35
    first_day = dt.date(2023, 1, 1)
    applied = [(first_day + dt.timedelta(days=int(d))).isoformat() for d in rng.integers(0, 730, rows)]
    score = (
        -2.2
        + 3.0 * debt / income
        - 0.025 * (age - 40)
        + 1.3 * (employment == "unemployed")
        + 0.5 * (city == "marseille")
        - 0.4 * mortgage
        - 0.003 * months
        + rng.normal(0.0, 0.6, rows)
    )
    default = (rng.random(rows) < 1.0 / (1.0 + np.exp(-score))).astype(np.int64)
    frame = pl.DataFrame(
        {
            "customer_id": rng.integers(0, rows // 3, rows),
            "applied_on": applied,
            "age": age,
            "income": income,
            "debt": debt,
            "city": city,
            "employment": employment,
            "months_at_address": months,
            "has_mortgage": mortgage,
            "default": default,
        }
    )
    # Real data has holes: some ages, incomes and cities are unknown.
    holes = {"age": 0.03, "income": 0.05, "city": 0.02}
    return frame.with_columns(
        pl.when(pl.Series(rng.random(rows) < rate)).then(None).otherwise(pl.col(name)).alias(name)
        for name, rate in holes.items()
    )


BUNDLED: dict[str, BundledDataset] = {
    d.name: d
    for d in (
        BundledDataset(
            "breast_cancer",
            "569 tumours, 30 numeric measurements; diagnosis benign or malignant (scikit-learn)",
            "diagnosis",
            "binary",
            _sklearn("load_breast_cancer", "diagnosis", labels=True),
        ),
        BundledDataset(
            "wine",
            "178 wines, 13 numeric measurements; cultivar 0, 1 or 2 (scikit-learn)",
            "cultivar",
            "multiclass",
            _sklearn("load_wine", "cultivar", labels=False),
        ),
        BundledDataset(
            "iris",
            "150 flowers, 4 numeric measurements; species setosa, versicolor or virginica (scikit-learn)",
            "species",
            "multiclass",
            _sklearn("load_iris", "species", labels=True),
        ),
        BundledDataset(
            "diabetes",
            "442 patients, 10 numeric baseline variables; disease progression after one year (scikit-learn)",
            "progression",
            "regression",
            _sklearn("load_diabetes", "progression", labels=False, scaled=False),
        ),
        BundledDataset(
            "credit",
            "2,000 synthetic loan applications with string categories, gaps and dates; default 0 or 1",
            "default",
            "binary",
            credit,
        ),
    )
}


def load(name: str) -> pl.DataFrame:
    """The bundled data set ``name`` as a polars frame."""
    try:
        return BUNDLED[name].load()
    except KeyError:
        raise DatasetError(f"no bundled data set {name!r}; choose from {', '.join(BUNDLED)}") from None


_WRITERS: dict[str, Callable[[pl.DataFrame, Path], None]] = {
    ".csv": lambda frame, path: frame.write_csv(path),
    ".parquet": lambda frame, path: frame.write_parquet(path),
    ".ndjson": lambda frame, path: frame.write_ndjson(path),
    ".jsonl": lambda frame, path: frame.write_ndjson(path),
    ".json": lambda frame, path: frame.write_json(path),
}


def write(name: str, path: str | Path) -> Path:
    """Write the bundled data set ``name`` to ``path``, in the format its suffix names (as ``read_file`` reads)."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise DatasetError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(_WRITERS)}")
    frame = load(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer(frame, path)
    return path
