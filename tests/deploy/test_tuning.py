"""The tuning example's two steps, on the example's own spec (fewer trials) and an SQL study storage: the search
workers fill one study, and the register step, run afterwards on the same spec, runs no trial and fits the best."""

from __future__ import annotations

import re
from pathlib import Path

import optuna

from tests.deploy.conftest import Rendered
from trainers import bundled, parse_spec, train


def test_the_register_step_fits_the_full_studys_best_trial(rendered: dict[str, Rendered], tmp_path: Path) -> None:
    search = rendered["examples/tuning/search"]
    register = rendered["examples/tuning/register"]
    (spec_map,) = search.of_kind("ConfigMap")
    assert register.of_kind("ConfigMap") == [spec_map], "both steps must run the same spec, or they name two studies"
    (text,) = spec_map["data"].values()
    text, replaced = re.subn(r"(?m)^trials = \d+", "trials = 2", text)
    assert replaced == 1
    spec = parse_spec(text)
    frame = bundled.load(spec.dataset.name)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    searched = train(spec, frame, dataset_version="7" * 16, study_storage=storage)
    study_name = searched.evaluation["search"]["study"]
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert len(study.trials) == 2
    registered = train(spec, frame, dataset_version="7" * 16, study_storage=storage)
    assert registered.evaluation["search"]["study"] == study_name
    assert len(optuna.load_study(study_name=study_name, storage=storage).trials) == 2
    best = {name: str(value) for name, value in study.best_trial.params.items()}
    assert {name: registered.params[name] for name in best} == best
