"""`forecaster train` and `forecaster evaluate`: one model on a CSV, and its evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    MODEL,
    TRAINING,
    BatchSizeOpt,
    FileArg,
    HorizonOpt,
    LagsOpt,
    LossOpt,
    NoSeriesIdsOpt,
    OverwriteOpt,
    RunDirArg,
    SeasonOpt,
    SplitOpt,
    at_least,
    between,
    data_options,
    in_panel,
    out_option,
    require_target,
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
from forecaster.errors import UsageError


@data_options
def train(
    file: FileArg,
    data: DataConfig,
    split: SplitOpt = "0.7,0.15,0.15",
    season: SeasonOpt = None,
    cell: Annotated[
        Cell, typer.Option(metavar="CELL", rich_help_panel=MODEL, help="gru or lstm.")
    ] = "gru",
    window: Annotated[
        int,
        typer.Option(
            metavar="N", callback=at_least(1), rich_help_panel=MODEL, help="Input steps per window."
        ),
    ] = 48,
    horizon: Annotated[int, in_panel(HorizonOpt, MODEL)] = 12,
    units: Annotated[
        int,
        typer.Option(
            metavar="N", callback=at_least(1), rich_help_panel=MODEL, help="Units per layer."
        ),
    ] = 32,
    layers: Annotated[
        int,
        typer.Option(
            metavar="N",
            callback=between(1, 4),
            rich_help_panel=MODEL,
            help="Stacked recurrent layers, 1 to 4.",
        ),
    ] = 1,
    dropout: Annotated[
        float,
        typer.Option(
            metavar="FRACTION",
            callback=between(0, 0.9),
            rich_help_panel=MODEL,
            help="Dropout after each layer.",
        ),
    ] = 0.0,
    bidirectional: Annotated[
        bool,
        typer.Option(
            "--bidirectional",
            rich_help_panel=MODEL,
            help="Read each window both ways (cannot be exported).",
        ),
    ] = False,
    residual: Annotated[
        Residual,
        typer.Option(
            metavar="ANCHOR",
            rich_help_panel=MODEL,
            help="Forecast the change from: none, last, seasonal, last_seasonal or "
            "decomposition (needs timestamps).",
        ),
    ] = "last",
    normalize: Annotated[
        Normalize,
        typer.Option(
            metavar="HOW",
            rich_help_panel=MODEL,
            help="Subtract each window's last value or mean (none: off).",
        ),
    ] = "last",
    calendar: Annotated[
        bool,
        typer.Option(
            "--calendar",
            rich_help_panel=MODEL,
            help="Add time of day, week and year as inputs.",
        ),
    ] = False,
    lags: LagsOpt = False,
    no_series_ids: NoSeriesIdsOpt = False,
    lr: Annotated[
        float,
        typer.Option(
            metavar="RATE",
            callback=at_least(1e-6),
            rich_help_panel=TRAINING,
            help="Adam learning rate.",
        ),
    ] = 1e-3,
    loss: LossOpt = "mae",
    batch_size: BatchSizeOpt = 64,
    epochs: Annotated[
        int,
        typer.Option(
            metavar="N", callback=at_least(1), rich_help_panel=TRAINING, help="Most epochs."
        ),
    ] = 100,
    patience: Annotated[
        int,
        typer.Option(
            metavar="N",
            callback=at_least(0),
            rich_help_panel=TRAINING,
            help="Stop after N epochs without improvement.",
        ),
    ] = 10,
    seed: Annotated[
        int,
        typer.Option(
            metavar="N", rich_help_panel=TRAINING, help="Seed of weights, shuffling, dropout."
        ),
    ] = 42,
    windows_per_epoch: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            rich_help_panel=TRAINING,
            help="Windows drawn afresh each epoch (default: all; 20000 with --id-col).",
        ),
    ] = None,
    out: Annotated[
        Path | None, out_option("Run directory (default: models/FILE-CELL-TIME).")
    ] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train a GRU or LSTM on a CSV and evaluate it on the test part against the baselines.

    Writes a run directory with model.keras, bundle.json, metrics.json, history.csv and plots.

    Example:

        forecaster train data/weather_greensboro.csv -t temp_c --epochs 20
    """
    require_target(file, data)
    model = ModelConfig(
        cell,
        units,
        layers,
        dropout,
        bidirectional,
        lr,
        residual=residual,
        normalize=normalize,
        loss=loss,
    )
    split_config = SplitConfig.parse(split)
    fleet = data.id_col is not None
    window_config = WindowConfig(window, horizon, calendar, lags, fleet and not no_series_ids)
    seasons = seasons_option(season)
    if data.id_col is not None:
        from forecaster.data.fleet import load_fleet
        from forecaster.runs.fleet import FLEET_WINDOWS_PER_EPOCH, train_fleet

        per_epoch = windows_per_epoch or FLEET_WINDOWS_PER_EPOCH
        training = TrainConfig(epochs, batch_size, patience, seed, windows_per_epoch=per_epoch)
        with epoch_progress(epochs) as on_epoch:
            fleet_outcome = train_fleet(
                load_fleet(file, data),
                split=split_config,
                window=window_config,
                model=model,
                training=training,
                seasons=seasons,
                out=out,
                overwrite=overwrite,
                on_epoch=on_epoch,
            )
        render.warn(fleet_outcome.warnings)
        render.fleet_training(fleet_outcome)
        return
    from forecaster.runs.train import train as train_run

    training = TrainConfig(epochs, batch_size, patience, seed, windows_per_epoch=windows_per_epoch)
    with epoch_progress(epochs) as on_epoch:
        outcome = train_run(
            file,
            data,
            split=split_config,
            window=window_config,
            model=model,
            training=training,
            seasons=seasons,
            out=out,
            overwrite=overwrite,
            on_epoch=on_epoch,
        )
    result = outcome.result
    render.warn(outcome.warnings)
    if result.interrupted:
        render.warn(["training interrupted; kept the best weights so far"])
    render.console.print(
        f"Trained {cell.upper()} ({result.params:,} parameters): {result.epochs_run} epochs in "
        f"{result.seconds:.1f} s, best epoch {result.best_epoch} "
        f"(val loss {result.best_val_loss:.5f})"
    )
    if result.shrinkage is not None:
        shares = result.shrinkage.mean(axis=1)  # over the targets
        render.console.print(
            f"Kept of the network's correction to the reference (fitted on the validation "
            f"part): {shares[0]:.2f} at step 1, {shares.mean():.2f} on average"
        )
    render.evaluation(outcome.evaluation, "Test part")
    render.console.print(f"Run written to {outcome.run_dir}")


def evaluate(
    run_dir: RunDirArg,
    file: Annotated[
        Path | None,
        typer.Argument(metavar="FILE", help="CSV to evaluate on (default: the test part)."),
    ] = None,
    season: SeasonOpt = None,
) -> None:
    """Evaluate a run at every origin against every baseline: naive, seasonal naive, HW, MSTL.

    Writes metrics.json (metrics_FILE.json for a FILE) and plots into the run directory.

    Example:

        forecaster evaluate models/weather_greensboro-gru-20261123-120000
    """
    from forecaster.bundle import Bundle
    from forecaster.runs.evaluate import evaluate as evaluate_run

    if Bundle.load(run_dir).fleet is not None:
        if file is not None or season is not None:
            raise UsageError(
                f"{run_dir} is a model of a fleet, evaluated on each series' own test part; "
                "leave out FILE and --season"
            )
        from forecaster.runs.fleet import evaluate_fleet

        render.fleet(evaluate_fleet(run_dir))
        return
    _, evaluation = evaluate_run(run_dir, file, seasons=seasons_option(season))
    render.evaluation(evaluation, f"{file}" if file else "Test part")
