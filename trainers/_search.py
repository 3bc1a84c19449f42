"""Hyper-parameter search with Optuna: TPE sampling, median pruning for estimators that grow by warm start, and a
study shared by every worker that names the same storage.

Workers stop when the study holds ``trials`` trials that finished (COMPLETE or PRUNED) or are running: the total is
exact however many workers share it. A worker that would overshoot (it asked for a trial while another worker took
the last slot) marks its trial FAIL with the user attribute ``conduit.surplus`` and stops; a worker killed mid-trial
leaves a RUNNING trial that counts until someone marks it failed, so the study then ends short rather than over.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from trainers._errors import TrainingError
from trainers._metrics import LOWER_IS_BETTER, as_probabilities, score
from trainers.spec import SearchChoice, SearchRange, TrainingSpec

__all__ = ["SearchOutcome", "run_search", "study_name"]

RUNGS = 4
_SURPLUS = "conduit.surplus"


@dataclass(frozen=True)
class SearchOutcome:
    """The study's name, what it optimised, the best trial's parameters and value, and every trial."""

    study: str
    metric: str
    direction: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[dict[str, Any]]
    param_importances: dict[str, float] | None = None
    """Optuna's fANOVA importance of each searched parameter; None with fewer than two completed trials."""


@dataclass(frozen=True)
class _Rows:
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    classes: int


def study_name(spec: TrainingSpec, dataset_version: str) -> str:
    """The spec's ``[search] study``, or one derived from the register name (or data set), the data set version and
    the spec's content, so workers with the same spec and data share a study and any change starts a new one."""
    assert spec.search is not None
    if spec.search.study:
        return spec.search.study
    base = spec.registration.name if spec.registration else spec.dataset.name
    content = spec.model_dump_json(exclude={"registration"}) + dataset_version
    return f"conduit-{base}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"


def run_search(
    spec: TrainingSpec,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    classes: int,
    *,
    dataset_version: str,
    storage: str | None,
    log: Callable[[str], None],
) -> SearchOutcome:
    """Search ``spec``'s space on already-transformed (fit, fit target, validation, validation target) rows.

    Raises:
        TrainingError: no trial completed.
    """
    import optuna

    assert spec.search is not None
    # Optuna logs every trial at INFO on its own handler; ``log`` already reports them.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric = spec.search_metric
    direction: Literal["minimize", "maximize"] = "minimize" if metric in LOWER_IS_BETTER else "maximize"
    info = spec.estimator
    prunable = spec.search.pruning and info.budget is not None
    name = study_name(spec, dataset_version)
    study = optuna.create_study(
        study_name=name,
        storage=_storage(storage),
        load_if_exists=True,
        direction=direction,
        # Seeded only when the study is this process's own: workers sharing one with the same seed would all
        # propose the same first trials.
        sampler=optuna.samplers.TPESampler(seed=spec.split.seed if storage is None else None),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2) if prunable else optuna.pruners.NopPruner(),
    )
    log(f"search: study {name!r}, {spec.search.trials} trials, {direction} {metric}")
    objective = _objective(spec, _Rows(*rows, classes=classes), metric, prunable)
    _run_trials(study, spec.search.trials, spec.search.timeout, objective, log)
    trials = [_trial_record(t) for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(_SURPLUS)]
    complete = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    if not complete:
        raise TrainingError(f"search: no trial of study {name!r} completed; see the trials' states in the log")
    best = study.best_trial
    assert best.value is not None
    log(f"search: best trial {best.number}: {metric} {best.value:.6g} with {best.params}")
    importances = _param_importances(study, len(complete), spec.split.seed)
    return SearchOutcome(name, metric, direction, dict(best.params), float(best.value), trials, importances)


def _param_importances(study: Any, completed: int, seed: int) -> dict[str, float] | None:
    """How much each parameter explains of the objective's variance across the completed trials (fANOVA, seeded so
    a report is repeatable); None when fewer than two trials completed or no parameter varied."""
    import optuna

    if completed < 2:
        return None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):  # e.g. every completed trial drew the same values
        return None
    return {name: float(value) for name, value in importances.items() if math.isfinite(value)} or None


_STORAGE_ATTEMPTS = 10


def _storage(url: str | None) -> Any:
    if url is None:
        return None
    import optuna
    from sqlalchemy.exc import DatabaseError

    # Several workers write to one SQLite file: wait for each other's locks instead of failing at once.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(_STORAGE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except DatabaseError:
            # Workers starting together on a new database race to create Optuna's tables ("table studies already
            # exists", a duplicate alembic_version row). The creation is not one transaction, so the loser may
            # collide table after table while the winner works: back off (with jitter) until the tables are made.
            if attempt == _STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _run_trials(
    study: Any, total: int, timeout: float | None, objective: Callable[[Any], float], log: Callable[[str], None]
) -> None:
    from optuna import TrialPruned
    from optuna.trial import TrialState

    taken = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    deadline = time.monotonic() + timeout if timeout else math.inf
    while time.monotonic() < deadline:
        if len(study.get_trials(deepcopy=False, states=taken)) >= total:
            return
        trial = study.ask()
        earlier = [t for t in study.get_trials(deepcopy=False, states=taken) if t.number < trial.number]
        if len(earlier) >= total:
            trial.set_user_attr(_SURPLUS, True)
            study.tell(trial, state=TrialState.FAIL)
            return
        try:
            value = objective(trial)
        except TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            log(f"trial {trial.number}: pruned ({trial.params})")
            continue
        except Exception:
            study.tell(trial, state=TrialState.FAIL)
            raise
        if math.isnan(value):
            study.tell(trial, state=TrialState.FAIL)
            log(f"trial {trial.number}: failed, the validation rows cannot define the metric ({trial.params})")
            continue
        study.tell(trial, value)
        log(f"trial {trial.number}: {value:.6g} ({trial.params})")


def _objective(spec: TrainingSpec, rows: _Rows, metric: str, prunable: bool) -> Callable[[Any], float]:
    from optuna import TrialPruned

    assert spec.search is not None
    info, task, seed = spec.estimator, spec.model.task, spec.split.seed
    space = spec.search.space

    def evaluate(estimator: Any) -> float:
        predictions = estimator.predict(rows.x_valid)
        probabilities = None if task == "regression" else as_probabilities(estimator.predict_proba(rows.x_valid))
        return score(metric, rows.y_valid, predictions, probabilities, rows.classes)

    def objective(trial: Any) -> float:
        params = {**spec.model.params, **{name: _suggest(trial, name, d) for name, d in space.items()}}
        estimator = info.build(task, params, seed)
        if not prunable:
            return evaluate(estimator.fit(rows.x_fit, rows.y_fit))
        assert info.budget is not None
        budget = int(estimator.get_params()[info.budget])
        # Grow the model in rungs with warm start, reporting each, so the pruner can stop a poor trial early.
        estimator.set_params(warm_start=True)
        value = math.nan
        for step in sorted({max(1, round(budget * k / RUNGS)) for k in range(1, RUNGS + 1)}):
            estimator.set_params(**{info.budget: step})
            value = evaluate(estimator.fit(rows.x_fit, rows.y_fit))
            trial.report(value, step)
            if trial.should_prune():
                raise TrialPruned()
        return value

    return objective


def _suggest(trial: Any, name: str, dimension: SearchRange | SearchChoice) -> Any:
    if isinstance(dimension, SearchChoice):
        return trial.suggest_categorical(name, list(dimension.choices))
    if dimension.integer:
        step = int(dimension.step or 1)
        return trial.suggest_int(name, int(dimension.low), int(dimension.high), step=step, log=dimension.log)
    return trial.suggest_float(
        name, float(dimension.low), float(dimension.high), step=dimension.step, log=dimension.log
    )


def _trial_record(trial: Any) -> dict[str, Any]:
    value = trial.value
    return {
        "number": trial.number,
        "params": dict(trial.params),
        "value": float(value) if value is not None and math.isfinite(value) else None,
        "state": trial.state.name,
        "intermediate": {
            str(step): float(v) for step, v in sorted(trial.intermediate_values.items()) if math.isfinite(v)
        },
    }
