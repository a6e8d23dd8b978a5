"""`forecaster train` and `forecaster evaluate`: one model on a CSV, and its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    BatchSizeOpt,
    FileArg,
    HorizonOpt,
    LossOpt,
    OutOpt,
    OverwriteOpt,
    RunDirArg,
    SeasonOpt,
    SplitOpt,
    data_options,
    seasons_option,
)
from forecaster.cli.progress import epoch_progress
from forecaster.config import (
    Cell,
    DataConfig,
    ModelConfig,
    Normalize,
    Residual,
    SplitConfig,
    TrainConfig,
    WindowConfig,
)


@data_options
def train(
    file: FileArg,
    data: DataConfig,
    split: SplitOpt = "0.7,0.15,0.15",
    cell: Annotated[Cell, typer.Option(help="Recurrent cell.")] = "gru",
    window: Annotated[int, typer.Option(min=1, help="Input steps per window.")] = 48,
    horizon: HorizonOpt = 12,
    units: Annotated[int, typer.Option(min=1, help="Units per recurrent layer.")] = 32,
    layers: Annotated[int, typer.Option(min=1, max=4, help="Stacked recurrent layers.")] = 1,
    dropout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Dropout after each layer.")
    ] = 0.0,
    bidirectional: Annotated[
        bool, typer.Option(help="Read the input window in both directions (not exportable).")
    ] = False,
    residual: Annotated[
        Residual,
        typer.Option(
            help="Forecast the change from: none, the last value, the seasonal value, the "
            "last value plus the change one season earlier, weighed per step by a learned gain "
            "(last_seasonal), or the decomposition baseline run over the window: seasonal "
            "profiles plus exponential smoothing (decomposition; needs timestamps)."
        ),
    ] = "last",
    normalize: Annotated[
        Normalize,
        typer.Option(help="Subtract each window's last value or mean from its inputs."),
    ] = "last",
    calendar: Annotated[
        bool, typer.Option(help="Add time-of-day/week/year sin-cos input channels.")
    ] = False,
    lr: Annotated[float, typer.Option(min=1e-6, help="Adam learning rate.")] = 1e-3,
    loss: LossOpt = "mae",
    batch_size: BatchSizeOpt = 64,
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs to train.")] = 100,
    patience: Annotated[
        int, typer.Option(min=0, help="Stop after this many epochs without improvement.")
    ] = 10,
    seed: Annotated[int, typer.Option(help="Seed for weights, shuffling and dropout.")] = 42,
    season: SeasonOpt = None,
    out: OutOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train a GRU or LSTM on a CSV, evaluate it on the test part against the baselines.

    Writes a run directory (default models/<file>-<cell>-<time>/) with model.keras, bundle.json,
    metrics.json, history.csv and plots.

    Example: forecaster train data/weather_greensboro.csv --target temp_c --cell lstm --epochs 20
    """
    from forecaster.runs.train import train as train_run

    with epoch_progress(epochs) as on_epoch:
        outcome = train_run(
            file,
            data,
            split=SplitConfig.parse(split),
            window=WindowConfig(window, horizon, calendar),
            model=ModelConfig(
                cell,
                units,
                layers,
                dropout,
                bidirectional,
                lr,
                residual=residual,
                normalize=normalize,
                loss=loss,
            ),
            training=TrainConfig(epochs, batch_size, patience, seed),
            seasons=seasons_option(season),
            out=out,
            overwrite=overwrite,
            on_epoch=on_epoch,
        )
    result = outcome.result
    if result.interrupted:
        render.warn(["training interrupted; kept the best weights so far"])
    render.console.print(
        f"Trained {cell.upper()} ({result.params:,} parameters): {result.epochs_run} epochs in "
        f"{result.seconds:.1f} s, best epoch {result.best_epoch} "
        f"(val loss {result.best_val_loss:.5f})"
    )
    render.evaluation(outcome.evaluation, "Test part")
    render.console.print(f"Run written to {outcome.run_dir}")


def evaluate(
    run_dir: RunDirArg,
    file: Annotated[
        Path | None, typer.Argument(help="CSV to evaluate on (default: the test part).")
    ] = None,
    season: SeasonOpt = None,
) -> None:
    """Rolling-origin evaluation of a run against naive, seasonal-naive and Holt-Winters baselines.

    Writes metrics.json (metrics_<file>.json for FILE) and plots into the run directory.

    Example: forecaster evaluate models/weather_greensboro-gru-20261123-120000
    """
    from forecaster.runs.evaluate import evaluate as evaluate_run

    _, evaluation = evaluate_run(run_dir, file, seasons=seasons_option(season))
    render.evaluation(evaluation, f"{file}" if file else "Test part")
