"""PNG plots of training and evaluation; matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecaster.files import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from forecaster.evaluation.fleet import FleetEvaluation
    from forecaster.evaluation.rolling import Evaluation

# One colour per method, the same in every plot and report.
COLORS = {
    "model": "#1f77b4",
    "gru": "#1f77b4",
    "lstm": "#d62728",
    "naive": "#7f7f7f",
    "seasonal_naive": "#2ca02c",
    "holt_winters": "#ff7f0e",
    "decomposition": "#9467bd",
    "actual": "#000000",
}
# Seasonal naive for a longer season (seasonal_naive_<steps>): a lighter green.
LONGER_SEASON_COLOR = "#98df8a"


def color_of(method: str) -> str:
    """A method's colour in every plot."""
    return COLORS.get(method, LONGER_SEASON_COLOR if method.startswith("seasonal_") else "#888888")


def _figure(width: float = 8.0, height: float = 4.0) -> Figure:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and devices
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def save_figure(fig: Figure, path: Path) -> Path:
    """Save a figure as PNG through a temporary file, so a crash leaves no half image."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def plot_history(
    history: dict[str, list[float]], best_epoch: int, path: Path, loss: str = "mae"
) -> Path:
    """Training and validation loss per epoch, with the kept epoch marked."""
    fig = _figure()
    ax = fig.add_subplot()
    losses = np.asarray(history.get("loss", []), dtype=np.float64)
    epochs = np.arange(1, len(losses) + 1)
    ax.plot(epochs, losses, label=f"training loss ({loss.upper()}, scaled)")
    shown = [losses]
    if "val_loss" in history:
        val_losses = np.asarray(history["val_loss"], dtype=np.float64)
        ax.plot(epochs[: len(val_losses)], val_losses[: len(epochs)], label="validation loss")
        shown.append(val_losses)
    if best_epoch:
        ax.axvline(best_epoch, color="#999999", linestyle="--", label=f"kept: epoch {best_epoch}")
    ax.set_xlabel("epoch")
    values = np.concatenate(shown)
    finite = values[np.isfinite(values)]
    # A log axis needs positive values: a constant target can reach a loss of exactly 0.
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")
    ax.legend()
    ax.set_title("Loss curves")
    return save_figure(fig, path)


def plot_forecasts(
    evaluation: Evaluation,
    history: np.ndarray,
    path: Path,
    *,
    examples: int = 4,
    methods: Sequence[str] = ("model", "seasonal_naive", "holt_winters", "decomposition"),
) -> Path:
    """Forecast vs actual for a few origins spread over the evaluated part (first target)."""
    n = len(evaluation.origins)
    if n == 0:
        return _empty_plot(
            "Forecast vs actual", "no origins to plot: no window was evaluated", path
        )
    picks = np.unique(np.linspace(0, n - 1, num=min(examples, n)).astype(int))
    fig = _figure(10.0, 2.4 * len(picks))
    axes = fig.subplots(len(picks), 1, squeeze=False)[:, 0]
    horizon = evaluation.truth.shape[1]
    target = evaluation.targets[0]
    for ax, i in zip(axes, picks, strict=True):
        origin = int(evaluation.origins[i])
        past = max(0, origin - 2 * horizon)
        steps = np.arange(past - origin, 0)
        ax.plot(steps, history[past:origin, 0], color=COLORS["actual"], linewidth=1)
        ahead = np.arange(horizon)
        _bands(ax, evaluation, i, ahead, first=i == picks[0])
        ax.plot(ahead, evaluation.truth[i, :, 0], color=COLORS["actual"], label="actual")
        for method in methods:
            if method in evaluation.forecasts:
                ax.plot(
                    ahead,
                    evaluation.forecasts[method][i, :, 0],
                    color=color_of(method),
                    label=evaluation.label(method),
                    linestyle="-" if method == "model" else "--",
                )
        ax.axvline(-0.5, color="#bbbbbb", linewidth=0.8)
        ax.set_ylabel(target)
        ax.set_title(f"origin {evaluation.labels[i]}", fontsize=9, loc="left")
    axes[0].legend(ncol=4, fontsize=8)
    axes[-1].set_xlabel("steps from the origin")
    return save_figure(fig, path)


def _bands(ax: Any, evaluation: Evaluation, i: int, ahead: np.ndarray, *, first: bool) -> None:
    """The model's intervals at origin i (first target), widest first, lighter when wider: as
    `predict` adapts them when the evaluation has those, else the bundle's."""
    widths = evaluation.half_widths.get("model")
    adapting = evaluation.adapting_widths
    if adapting is not None:
        widths = adapting[:, i]
    if widths is None:
        return
    names = [s.name for s in evaluation.intervals.get("model", [])]
    kind = " (adapting)" if adapting is not None else ""
    point = evaluation.forecasts["model"][i, :, 0]
    for j in reversed(range(len(widths))):
        ax.fill_between(
            ahead,
            point - widths[j, :, 0],
            point + widths[j, :, 0],
            color=COLORS["model"],
            alpha=0.15,  # overlapping: the narrower band shows darker
            linewidth=0,
            label=f"model {names[j]}% interval{kind}" if first and j < len(names) else None,
        )


def plot_error_by_step(evaluation: Evaluation, path: Path) -> Path:
    """MAE per horizon step for the model and each baseline (first target, original units)."""
    if len(evaluation.origins) == 0:
        return _empty_plot(
            "Error by horizon step", "no errors to plot: no window was evaluated", path
        )
    fig = _figure()
    ax = fig.add_subplot()
    for method, score in evaluation.scores.items():
        per_step: Any = score["per_step"]["mae"][0]
        ax.plot(
            np.arange(1, len(per_step) + 1),
            per_step,
            marker="o",
            markersize=3,
            color=color_of(method),
            label=evaluation.label(method),
        )
    ax.set_xlabel("horizon step")
    ax.set_ylabel(f"MAE ({evaluation.targets[0]})")
    ax.set_title("Error by horizon step")
    ax.legend()
    return save_figure(fig, path)


def _empty_plot(title: str, message: str, path: Path) -> Path:
    """A figure saying why there is nothing to draw, so the file a report links to exists."""
    fig = _figure(8.0, 2.0)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    return save_figure(fig, path)


# Beside the baselines: each series' best baseline, and the model's outcome against it.
BEST_BASELINE_COLOR = "#444444"
OUTCOME_COLORS = {"win": COLORS["model"], "tie": "#999999", "loss": "#d62728"}


def plot_fleet_mase(fleet: FleetEvaluation, path: Path, *, seed: int = 0) -> Path:
    """Per-series MASE of every method (one dot per series over a box), and the model's ratio
    to each series' best baseline; the worst series is named. `seed` jitters the dots.
    """
    from forecaster.evaluation.fleet import BEST_BASELINE
    from forecaster.evaluation.rolling import TIE

    rows = ["model", BEST_BASELINE, *(m for m in fleet.methods if m != "model")]
    n = len(fleet.series)
    fig = _figure(9.0, 2.6 + 0.42 * len(rows))
    top, bottom = fig.subplots(2, 1, height_ratios=[len(rows), 1.6])
    rng = np.random.default_rng(seed)
    # Big, solid dots for a handful of series; small, faint ones for a thousand.
    size = float(np.clip(60 / np.sqrt(n), 3, 30))
    alpha = float(np.clip(6 / np.sqrt(n), 0.2, 0.9))
    values = []
    for y, method in enumerate(rows):
        mase = np.array(
            [
                s.best_baseline_mase if method == BEST_BASELINE else s.mase.get(method, np.nan)
                for s in fleet.series
            ]
        )
        values.append(mase)
        color = BEST_BASELINE_COLOR if method == BEST_BASELINE else color_of(method)
        _strip(top, mase, y, color, rng, size, alpha)
    top.set_yticks(range(len(rows)), [fleet.label(m) for m in rows])
    top.invert_yaxis()  # the model on top
    top.axvline(1.0, color="#bbbbbb", linestyle="--", linewidth=0.8)
    _log_if_wide(top, np.concatenate(values))
    worst = fleet.worst_mase
    _name(top, worst.model_mase, 0, f"{worst.id}: highest MASE")
    top.set_xlabel("MASE per series (1 = the series' in-sample seasonal naive)")
    top.set_title(f"Per-series MASE over {n} series", loc="left", fontsize=10)

    ratios = np.array([s.ratio for s in fleet.series])
    colors = [OUTCOME_COLORS[s.outcome] for s in fleet.series]
    bottom.axvspan(1 - TIE, 1 + TIE, color="#eeeeee", linewidth=0)
    bottom.axvline(1.0, color="#bbbbbb", linestyle="--", linewidth=0.8)
    _strip(bottom, ratios, 0, colors, rng, size, alpha, box_color="#555555")
    bottom.set_yticks([0], ["model / best"])
    _log_if_wide(bottom, ratios)
    worst = fleet.worst_ratio
    _name(bottom, worst.ratio, 0, f"{worst.id}: largest loss to {worst.best_baseline_label}")
    bottom.set_xlabel("model MASE / the series' best baseline MASE")
    bottom.set_title(
        f"Model vs each series' best baseline: {fleet.wins} won, {fleet.ties} tied (within "
        f"{TIE:.0%}), {fleet.losses} lost",
        loc="left",
        fontsize=10,
    )
    return save_figure(fig, path)


def _strip(
    ax: Any,
    values: np.ndarray,
    y: float,
    color: str | list[str],
    rng: np.random.Generator,
    size: float,
    alpha: float,
    box_color: str | None = None,
) -> None:
    """A box of `values` at height y, and one jittered dot per finite value over it."""
    keep = np.isfinite(values)
    if not keep.any():
        return
    shown = values[keep]
    edge = box_color or (color if isinstance(color, str) else "#555555")
    ax.boxplot(
        shown,
        positions=[y],
        orientation="horizontal",
        widths=0.6,
        showfliers=False,  # every series is a dot already
        whis=(0, 100),
        medianprops={"color": edge, "linewidth": 2},
        boxprops={"color": edge},
        whiskerprops={"color": edge},
        capprops={"color": edge},
    )
    dots = color if isinstance(color, str) else [c for c, k in zip(color, keep, strict=True) if k]
    jitter = rng.uniform(-0.22, 0.22, size=len(shown))
    ax.scatter(shown, y + jitter, s=size, c=dots, alpha=alpha, linewidths=0, zorder=3)


def _log_if_wide(ax: Any, values: np.ndarray) -> None:
    """A log axis when the values span more than a factor of 20 (a few series far off)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    finite = values[np.isfinite(values)]
    if finite.size and (finite > 0).all() and finite.max() / finite.min() > 20:
        ax.set_xscale("log")
        # 0.2, 0.5, 1, 2, 5 ... as plain numbers: powers of ten alone leave a decade bare.
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())


def _name(ax: Any, x: float, y: float, text: str) -> None:
    """Label one dot (a series) with its id."""
    if np.isfinite(x):
        ax.annotate(
            text if len(text) <= 60 else text[:57] + "...",
            (x, y),
            xytext=(-4, 10),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            arrowprops={"arrowstyle": "-", "color": "#555555", "linewidth": 0.6},
        )
