"""The GRU-vs-LSTM comparison: each cell's retrained best, the winner rule, and its files.

comparison.json is the record (`Comparison`); comparison.md and comparison.png show it. The
export stage fills each cell's `device` part when it has converted that cell's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecaster.files import write_text_atomic
from forecaster.layout import COMPARISON_JSON, COMPARISON_MD, COMPARISON_PNG
from forecaster.records import read_record, write_record
from forecaster.tune.space import format_hyperparameter


@dataclass
class DeviceSummary:
    """The shipped LiteRT file of one cell: filled by the export stage."""

    tflite_bytes: int | None = None
    latency_ms: float | None = None  # one window, batch 1
    quantization: str | None = None
    bundle: str | None = None  # relative to the job's output directory


@dataclass
class CellResult:
    """The best model of one cell, retrained and measured."""

    cell: str
    run_dir: str  # relative to the search directory: winner or runner_up
    hyperparameters: dict[str, Any]
    trial_id: str
    trials: int  # trials of this cell that finished
    search_val_loss: float  # best trial's objective during the search
    val_loss: float  # the retrained model on the search's validation origins: the winner rule
    params: int
    test: dict[str, float]  # mae, rmse, mase of the model on the test part (original units)
    test_skill: dict[str, float]  # model MASE / baseline MASE
    seconds_per_epoch: float  # median
    epochs_run: int
    best_epoch: int
    seconds_to_best: float  # training time up to the kept epoch
    keras_ms_per_window: dict[str, float]  # batch1: one window per call; batched: all at once
    device: DeviceSummary = field(default_factory=DeviceSummary)


@dataclass
class Comparison:
    """comparison.json: the cells side by side, the winner and why, and how they were searched."""

    winner: str
    reason: str
    rule: dict[str, Any]
    search: dict[str, Any]
    cells: dict[str, CellResult]

    @classmethod
    def of(
        cls, results: list[CellResult], winner: str, reason: str, search: dict[str, Any]
    ) -> Comparison:
        """The comparison of retrained cells under the winner rule's verdict."""
        rule = {
            "selected_by": (
                f"validation loss ({str(search.get('loss', 'mse')).upper()}, scaled) on the "
                "search's validation origins"
            ),
            "prefer_smaller_within": search.get("prefer_smaller_within"),
        }
        return cls(winner, reason, rule, search, {r.cell: r for r in results})

    def write(self, directory: Path) -> None:
        """comparison.json, comparison.md and comparison.png in `directory`."""
        write_record(directory / COMPARISON_JSON, self)
        write_text_atomic(directory / COMPARISON_MD, comparison_markdown(self))
        plot_comparison(self, directory / COMPARISON_PNG)

    @classmethod
    def read(cls, directory: Path) -> Comparison:
        """The comparison a search wrote into `directory`."""
        return read_record(directory / COMPARISON_JSON, cls)


def choose_winner(results: list[CellResult], prefer_smaller_within: float) -> tuple[str, str]:
    """The cell to ship and why, from validation loss only (never the test part).

    The lower validation loss wins, unless the other model is within `prefer_smaller_within`
    (relative to the better loss) and has fewer parameters: then the smaller model wins.
    """
    if len(results) == 1:
        only = results[0]
        return only.cell, (
            f"{only.cell.upper()} is the only cell searched (validation loss {only.val_loss:.5g})"
        )
    best, other = sorted(results, key=lambda r: (r.val_loss, r.params))[:2]
    gap = (other.val_loss - best.val_loss) / best.val_loss if best.val_loss > 0 else 0.0
    if gap <= prefer_smaller_within and other.params < best.params:
        return other.cell, (
            f"{other.cell.upper()} wins: its validation loss {other.val_loss:.5g} is within "
            f"{prefer_smaller_within:.0%} of {best.cell.upper()}'s {best.val_loss:.5g} "
            f"({gap:.1%} apart) and it has fewer parameters ({other.params:,} vs "
            f"{best.params:,})"
        )
    tie_note = (
        f"; within {prefer_smaller_within:.0%} but {other.cell.upper()} is not smaller"
        if gap <= prefer_smaller_within
        else ""
    )
    return best.cell, (
        f"{best.cell.upper()} wins: lower validation loss {best.val_loss:.5g} vs "
        f"{other.cell.upper()}'s {other.val_loss:.5g} ({gap:.1%} higher){tie_note}"
    )


ROWS: tuple[tuple[str, str, str], ...] = (
    # (label, attribute path, format)
    ("validation loss (selection)", "val_loss", ".5g"),
    ("best trial validation loss", "search_val_loss", ".5g"),
    ("test MAE", "test.mae", ".4g"),
    ("test RMSE", "test.rmse", ".4g"),
    ("test MASE", "test.mase", ".3f"),
    ("parameters", "params", ",d"),
    ("seconds per epoch", "seconds_per_epoch", ".3f"),
    ("epochs to best / run", "epochs", ""),
    ("seconds to best epoch", "seconds_to_best", ".2f"),
    ("Keras ms per window, batch 1", "keras_ms_per_window.batch1", ".3f"),
    ("Keras ms per window, batched", "keras_ms_per_window.batched", ".4f"),
    ("trials finished", "trials", "d"),
)
DEVICE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("exported bytes", "device.tflite_bytes", ",d"),
    ("exported mode", "device.quantization", ""),
    ("LiteRT ms per window, batch 1", "device.latency_ms", ".3f"),
)


def value_of(cell: CellResult, path: str) -> Any:
    """A cell's value by dotted path ('test.mae', 'device.tflite_bytes'); None when unset."""
    if path == "epochs":
        return f"{cell.best_epoch} / {cell.epochs_run}"
    value: Any = cell
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part)
    return value


def formatted(cell: CellResult, path: str, spec: str) -> str:
    """A cell's value formatted for a table; '-' when the stage that fills it has not run."""
    value = value_of(cell, path)
    return "-" if value is None else format(value, spec)


def comparison_markdown(comparison: Comparison) -> str:
    """A markdown table of the cells side by side, the winner and why."""
    cells = comparison.cells
    names = list(cells)
    lines = [
        "# GRU vs LSTM",
        "",
        f"**Winner: {comparison.winner.upper()}.** {comparison.reason}.",
        "",
        "| | " + " | ".join(n.upper() for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, path, spec in ROWS:
        row = [formatted(cells[n], path, spec) for n in names]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    hp_keys = list(next(iter(cells.values())).hyperparameters)
    for key in hp_keys:
        row = [format_hyperparameter(cells[n].hyperparameters.get(key)) for n in names]
        lines.append(f"| {key} | " + " | ".join(row) + " |")
    search = comparison.search
    lines += [
        "",
        f"Search: {search['tuner']} tuner, seed {search['seed']}, up to {search['max_epochs']} "
        f"epochs per trial; each cell searched separately with the same seed (matched draws).",
        "Winner picked on validation loss, never on the test part; test metrics are from the "
        "rolling-origin evaluation of each retrained model (as `forecaster evaluate`).",
        "`device` in comparison.json is filled by `forecaster export` (LiteRT size, latency).",
        "",
    ]
    return "\n".join(lines)


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    """Bars per metric, one colour per cell (the colours of every other forecaster plot)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from forecaster.report.plots import color_of, save_figure

    panels = (
        ("validation loss", "val_loss"),
        ("test MAE", "test.mae"),
        ("test RMSE", "test.rmse"),
        ("test MASE", "test.mase"),
        ("parameters", "params"),
        ("s / epoch", "seconds_per_epoch"),
        ("s to best epoch", "seconds_to_best"),
        ("ms / window (batch 1)", "keras_ms_per_window.batch1"),
    )
    cells = comparison.cells
    names = list(cells)
    fig = Figure(figsize=(12.0, 5.0), dpi=100, layout="constrained")
    axes = fig.subplots(2, 4).ravel()
    for ax, (title, key) in zip(axes, panels, strict=True):
        values = [float(value_of(cells[n], key)) for n in names]
        bars = ax.bar([n.upper() for n in names], values, color=[color_of(n) for n in names])
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.15)
    fig.suptitle(f"GRU vs LSTM: {comparison.winner.upper()} wins", fontsize=12)
    return save_figure(fig, path)
