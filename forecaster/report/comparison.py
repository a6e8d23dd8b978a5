"""The GRU-vs-LSTM comparison after a search: comparison.json / .md / .png."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forecaster.files import write_text_atomic

COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"
COMPARISON_PNG = "comparison.png"


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
    # Filled by the export step: LiteRT file size and on-device latency per quantization mode.
    device: dict[str, Any] = field(
        default_factory=lambda: {"tflite_bytes": None, "latency_ms": None, "quantization": None}
    )


def comparison_json(
    results: list[CellResult], winner: str, reason: str, search: dict[str, Any]
) -> dict[str, Any]:
    """Everything the comparison files show, as plain JSON."""
    return {
        "winner": winner,
        "reason": reason,
        "rule": {
            "selected_by": (
                f"validation loss ({str(search.get('loss', 'mse')).upper()}, scaled) on the "
                "search's validation origins"
            ),
            "prefer_smaller_within": search.get("prefer_smaller_within"),
        },
        "search": search,
        "cells": {r.cell: asdict(r) for r in results},
    }


def write_comparison(directory: Path, report: dict[str, Any]) -> None:
    """comparison.json, comparison.md and comparison.png in `directory`."""
    write_text_atomic(directory / COMPARISON_JSON, json.dumps(report, indent=2) + "\n")
    write_text_atomic(directory / COMPARISON_MD, comparison_markdown(report))
    plot_comparison(report, directory / COMPARISON_PNG)


ROWS: tuple[tuple[str, str, str], ...] = (
    # (label, key path, format)
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


def value_of(cell: dict[str, Any], path: str) -> Any:
    """A value from a cell's JSON by dotted path ('test.mae')."""
    if path == "epochs":
        return f"{cell['best_epoch']} / {cell['epochs_run']}"
    value: Any = cell
    for part in path.split("."):
        value = value[part]
    return value


def comparison_markdown(report: dict[str, Any]) -> str:
    """A markdown table of the cells side by side, the winner and why."""
    cells = report["cells"]
    names = list(cells)
    lines = [
        "# GRU vs LSTM",
        "",
        f"**Winner: {report['winner'].upper()}.** {report['reason']}.",
        "",
        "| | " + " | ".join(n.upper() for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, path, fmt in ROWS:
        row = [format(value_of(cells[n], path), fmt) for n in names]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    hp_keys = list(next(iter(cells.values()))["hyperparameters"])
    for key in hp_keys:
        row = [_hp_text(cells[n]["hyperparameters"].get(key)) for n in names]
        lines.append(f"| {key} | " + " | ".join(row) + " |")
    search = report["search"]
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


def _hp_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def plot_comparison(report: dict[str, Any], path: Path) -> Path:
    """Bars per metric, one colour per cell (the colours of every other forecaster plot)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from forecaster.report.plots import COLORS, save_figure

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
    cells = report["cells"]
    names = list(cells)
    fig = Figure(figsize=(12.0, 5.0), dpi=100, layout="constrained")
    axes = fig.subplots(2, 4).ravel()
    for ax, (title, key) in zip(axes, panels, strict=True):
        values = [float(value_of(cells[n], key)) for n in names]
        bars = ax.bar(
            [n.upper() for n in names], values, color=[COLORS.get(n, "#888888") for n in names]
        )
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.15)
    fig.suptitle(f"GRU vs LSTM: {report['winner'].upper()} wins", fontsize=12)
    return save_figure(fig, path)
