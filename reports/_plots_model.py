"""Plots of the model itself: feature importances, coefficients, training loss, weight trajectories and the
hyper-parameter search. Each takes the evaluation document and answers None when it lacks the data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from reports._plots_eval import numbers
from reports._svg import PALETTE, Plot, new_figure, to_svg

__all__ = [
    "importances_plot",
    "loss_plot",
    "search_importances_plot",
    "search_trials_plot",
    "weights_epochs_plot",
    "weights_histogram_plot",
]

MAX_BARS = 20
MAX_COEFFICIENT_LINES = 10


def _bars(
    names: Sequence[str], values: Sequence[float], plot_id: str, *, title: str, xlabel: str, caption: str
) -> Plot:
    order = np.argsort(-np.abs(np.asarray(values, dtype=np.float64)), kind="stable")[:MAX_BARS]
    shown = [(str(names[i]), float(values[i])) for i in order][::-1]
    with new_figure(6.4, 1.2 + 0.28 * len(shown)) as figure:
        ax = figure.add_subplot()
        ax.barh([n for n, _ in shown], [v for _, v in shown], color=PALETTE[0])
        for i, (_, value) in enumerate(shown):
            ax.text(value, i, f" {value:.4g}", va="center", fontsize=7)
        ax.set(xlabel=xlabel, title=title)
        ax.grid(axis="y", visible=False)
        more = len(values) - len(shown)
        return to_svg(figure, plot_id, caption + (f" (the {len(shown)} largest of {len(values)})" if more else ""))


def importances_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    importances = evaluation.get("feature_importances")
    if not importances:
        return None
    by_input = importances.get("by_input") or {}
    if by_input:
        names, values = list(by_input), [float(v) for v in by_input.values()]
        caption = "Importance the model gives each input column (one-hot columns summed into their input)"
    else:
        names = list(importances["features"])
        values = [0.0 if v is None else float(v) for v in importances["importances"]]
        if len(names) != len(values):
            raise ValueError(f"{len(values)} importances for {len(names)} features")
        caption = "Importance the model gives each feature"
    return _bars(names, values, "plot-importances", title="Feature importances", xlabel="importance", caption=caption)


def weights_histogram_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    coefficients = evaluation.get("coefficients")
    if not coefficients or not coefficients.get("values"):
        return None
    rows = [numbers(row) for row in coefficients["values"]]
    features = list(coefficients["features"])
    if len(rows) != len(coefficients["rows"]) or any(len(row) != len(features) for row in rows):
        raise ValueError("coefficients do not line up with their rows and features")  # bars would be misnamed
    with new_figure(8.4, 3.8) as figure:
        left, right = figure.subplots(1, 2)
        values = np.concatenate(rows)
        left.hist(values[np.isfinite(values)], bins=min(40, max(5, len(values) // 2)), color=PALETTE[0])
        left.set(xlabel="coefficient", ylabel="count", title=f"Weight distribution ({len(values)} coefficients)")
        # The largest weights by magnitude over every row, labelled with their feature (and class for several rows).
        labels = [f"{f}" if len(rows) == 1 else f"{f} [{r}]" for r in coefficients["rows"] for f in features]
        order = np.argsort(-np.abs(values), kind="stable")[:MAX_BARS][::-1]
        right.barh(
            [labels[i] for i in order],
            values[order],
            color=[PALETTE[0] if v >= 0 else PALETTE[1] for v in values[order]],
        )
        right.set(xlabel="coefficient", title="Largest coefficients")
        right.tick_params(axis="y", labelsize=7)
        caption = "Coefficients of the linear model on its (standardised, one-hot) features"
        return to_svg(figure, "plot-weights-hist", caption)


def loss_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    loss = evaluation.get("training_loss")
    trajectory = evaluation.get("weight_trajectory") or {}
    replayed = trajectory.get("loss")
    if not loss and not replayed:
        return None
    with new_figure(6.4, 4.0) as figure:
        ax = figure.add_subplot()
        if loss:
            iterations = loss["iterations"]
            name = "training loss reported by the estimator" if loss.get("loss") == "estimator" else loss.get("loss")
            ax.plot(iterations, numbers(loss["train"]), label="training rows")
            if loss.get("test"):
                ax.plot(iterations, numbers(loss["test"]), label="test rows")
            caption = f"Loss per iteration ({name})"
        elif replayed:
            ax.plot(trajectory["epochs"], numbers(replayed["train"]), marker="o", markersize=3, label="training rows")
            caption = f"Training loss per epoch ({replayed.get('name')}), measured on the replayed fit"
        ax.set(xlabel="iteration", ylabel="loss", title="Training dynamics")
        ax.legend()
        return to_svg(figure, "plot-loss", caption)


def weights_epochs_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    trajectory = evaluation.get("weight_trajectory")
    if not trajectory or not trajectory.get("epochs"):
        return None
    epochs = trajectory["epochs"]
    coefficients = trajectory.get("coefficients")
    with new_figure(9.0 if coefficients else 6.4, 4.0) as figure:
        axes = figure.subplots(1, 2 if coefficients else 1, squeeze=False)[0]
        for layer in trajectory.get("layers", []):
            axes[0].plot(epochs, numbers(layer["norms"]), marker="o", markersize=3, label=layer["name"])
        axes[0].set(xlabel="epoch", ylabel="L2 norm", title="Weight norm per layer")
        axes[0].legend()
        if coefficients:
            stacked = np.asarray(coefficients["values"], dtype=np.float64)  # epochs x rows x features
            flat = stacked.reshape(len(epochs), -1)
            names = [
                f if len(coefficients["rows"]) == 1 else f"{f} [{r}]"
                for r in coefficients["rows"]
                for f in coefficients["features"]
            ]
            if len(names) != flat.shape[1]:
                raise ValueError(f"{flat.shape[1]} coefficients per epoch for {len(names)} names")
            for i in np.argsort(-np.abs(flat[-1]), kind="stable")[:MAX_COEFFICIENT_LINES]:
                axes[1].plot(epochs, flat[:, i], label=names[i])
            axes[1].set(xlabel="epoch", ylabel="coefficient", title="Largest coefficients across epochs")
            axes[1].legend(fontsize=6)
        gap = trajectory.get("final_gap")
        caption = f"How the weights moved during training: {trajectory.get('note', 'a replay of the fit')}"
        if gap is not None:
            caption += f"; the replay ends {gap:.2%} away from the stored model's weights"
        return to_svg(figure, "plot-weights-epochs", caption)


def search_trials_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    search = evaluation.get("search")
    trials = (search or {}).get("trials") or []
    if not trials:
        return None
    assert search is not None
    maximise = search.get("direction") == "maximize"
    with new_figure(6.4, 4.0) as figure:
        ax = figure.add_subplot()
        states = sorted({str(t.get("state")) for t in trials})
        for i, state in enumerate(states):
            chosen = [t for t in trials if str(t.get("state")) == state and t.get("value") is not None]
            if chosen:
                ax.scatter(
                    [t["number"] for t in chosen],
                    [t["value"] for t in chosen],
                    s=22,
                    label=state.lower(),
                    color=PALETTE[i % len(PALETTE)],
                )
            pruned = [
                t for t in trials if str(t.get("state")) == state and t.get("value") is None and t.get("intermediate")
            ]
            if pruned:
                last = [float(list(t["intermediate"].values())[-1]) for t in pruned]
                ax.scatter(
                    [t["number"] for t in pruned],
                    last,
                    s=22,
                    marker="x",
                    label=f"{state.lower()} (last reported)",
                    color=PALETTE[i % len(PALETTE)],
                )
        done = sorted(
            (t["number"], t["value"]) for t in trials if t.get("state") == "COMPLETE" and t.get("value") is not None
        )
        if done:
            values = np.array([v for _, v in done])
            best = np.maximum.accumulate(values) if maximise else np.minimum.accumulate(values)
            ax.step([n for n, _ in done], best, where="post", color="#6b7280", linewidth=1, label="best so far")
        metric = search.get("metric", "objective")
        ax.set(xlabel="trial", ylabel=metric, title=f"Search: {metric} per trial ({search.get('direction', '')})")
        ax.legend()
        best_value = float(search.get("best_value", float("nan")))
        caption = f"{len(trials)} trials of study {search.get('study', '')}; best {metric} {best_value:.4g}"
        return to_svg(figure, "plot-search-trials", caption)


def search_importances_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    importances = (evaluation.get("search") or {}).get("param_importances")
    if not importances:
        return None
    names, values = list(importances), [float(v) for v in importances.values()]
    caption = "Share of the objective's variance each searched parameter explains (Optuna's fANOVA)"
    return _bars(
        names, values, "plot-search-importances", title="Parameter importances", xlabel="importance", caption=caption
    )
