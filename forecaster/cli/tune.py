"""`forecaster tune` and `forecaster run`: the GRU-vs-LSTM search, and the whole job around it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    BatchSizeOpt,
    CellsOpt,
    FileArg,
    HorizonOpt,
    LossOpt,
    MaxAccuracyLossOpt,
    MaxEpochsOpt,
    MaxTrialsOpt,
    OutOpt,
    OverwriteOpt,
    SearchSeedOpt,
    SeasonOpt,
    SplitOpt,
    TunerOpt,
    data_options,
    parse_max_accuracy_loss,
    seasons_option,
)
from forecaster.cli.progress import print_stage, tune_progress
from forecaster.config import DataConfig, Quantize, SplitConfig
from forecaster.tune.config import DEFAULT_TUNE_BUDGET, Role

RangeOpt = Annotated[str | None, typer.Option(help="MIN:MAX (or one value).", show_default=False)]


@data_options
def tune(
    file: FileArg,
    data: DataConfig,
    split: SplitOpt = "0.7,0.15,0.15",
    horizon: HorizonOpt = 12,
    season: SeasonOpt = None,
    cells: CellsOpt = "gru,lstm",
    tuner: TunerOpt = "hyperband",
    max_trials: MaxTrialsOpt = None,
    max_epochs: MaxEpochsOpt = 30,
    patience: Annotated[
        int, typer.Option(min=0, help="Early stopping patience inside every trial.")
    ] = 5,
    batch_size: BatchSizeOpt = 64,
    loss: LossOpt = "mae",
    time_budget: Annotated[
        str,
        typer.Option(
            help="Wall time of the whole tune (90s, 10m, 1h30m, or none): trials start during "
            "its first 3/4, retraining the best of each cell gets the rest."
        ),
    ] = DEFAULT_TUNE_BUDGET,
    seed: SearchSeedOpt = 42,
    space: Annotated[
        Path | None, typer.Option(help="Search-space TOML file; the options below override it.")
    ] = None,
    windows: Annotated[
        str | None,
        typer.Option(
            help="Window lengths: steps (24,48) or multiples (horizon:1,2,4, season:1,2)."
        ),
    ] = None,
    units: RangeOpt = None,
    layers: RangeOpt = None,
    dropout: RangeOpt = None,
    lr: Annotated[
        str | None, typer.Option(help="Learning rate MIN:MAX, searched on a log scale.")
    ] = None,
    residual: Annotated[
        str | None, typer.Option(help="Residual choices: none,last,seasonal,last_seasonal.")
    ] = None,
    normalize: Annotated[
        str | None, typer.Option(help="Per-window normalisation choices: none,last,mean.")
    ] = None,
    prefer_smaller_within: Annotated[
        str, typer.Option(help="Take the smaller model if validation losses are this close.")
    ] = "2%",
    final_epochs: Annotated[
        int | None, typer.Option(min=1, help="Epochs to retrain the best models (default: max).")
    ] = None,
    out: OutOpt = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the search in --out; finished trials are kept.")
    ] = False,
    overwrite: OverwriteOpt = False,
    distributed: Annotated[
        Role | None, typer.Option(help="Keras Tuner's chief (serves trials) or worker (runs them).")
    ] = None,
    oracle: Annotated[
        str | None, typer.Option(help="The chief's HOST:PORT; cell i uses PORT + i.")
    ] = None,
    oracle_timeout: Annotated[
        str, typer.Option(help="How long a worker waits for the chief.")
    ] = "2m",
) -> None:
    """Search GRU and LSTM hyperparameters with Keras Tuner, retrain the best of each, compare them.

    Writes OUT/winner/ and OUT/runner_up/ (run directories for evaluate and export),
    OUT/comparison.json, .md and .png, OUT/search.json and OUT/tuner/ (Keras Tuner's files).

    Example: forecaster tune data/weather_greensboro.csv --target temp_c --time-budget 30m
    """
    from forecaster.config import parse_fraction
    from forecaster.tune.config import Distributed, OptionUsageError, TuneConfig, parse_budget
    from forecaster.tune.run import tune as tune_run
    from forecaster.tune.space import SpaceOverrides, load_space

    options = SpaceOverrides.from_options(
        cells=cells,
        windows=windows,
        units=units,
        layers=layers,
        dropout=dropout,
        lr=lr,
        residual=residual,
        normalize=normalize,
    )
    overrides = load_space(space, options)
    config = TuneConfig.within(
        parse_budget(time_budget),
        tuner=tuner,
        max_trials=max_trials,
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch_size,
        seed=seed,
        prefer_smaller_within=parse_fraction(prefer_smaller_within, "--prefer-smaller-within"),
        final_epochs=final_epochs,
        loss=loss,
    )
    try:
        cluster = Distributed.from_options(distributed, oracle, oracle_timeout)
    except OptionUsageError as exc:
        raise typer.BadParameter(str(exc), param_hint=exc.option) from None
    with tune_progress() as on_status:
        outcome = tune_run(
            file,
            data,
            split=SplitConfig.parse(split),
            horizon=horizon,
            seasons=seasons_option(season),
            space=overrides,
            config=config,
            out=out,
            resume=resume,
            overwrite=overwrite,
            distributed=cluster,
            on_status=on_status,
        )
    if outcome.role == "worker":
        render.console.print(
            f"Worker done: {sum(outcome.trials.values())} trial(s) finished here; the chief "
            f"writes the results to {outcome.out}"
        )
        return
    if outcome.budget_spent:
        trials = sum(outcome.trials.values())
        render.note(
            f"The time budget ended the search after {trials} trial(s) in "
            f"{outcome.seconds:.0f} s; --time-budget none runs the whole schedule."
        )
    if outcome.comparison is not None:
        render.comparison(outcome.comparison)
    render.say(f"Winner: {outcome.reason}")
    render.console.print(f"Search written to {outcome.out} (winner/, runner_up/, comparison.md)")


@data_options
def run(
    file: FileArg,
    data: DataConfig,
    split: SplitOpt = "0.7,0.15,0.15",
    horizon: HorizonOpt = 12,
    season: SeasonOpt = None,
    cells: CellsOpt = "gru,lstm",
    tuner: TunerOpt = "hyperband",
    max_trials: MaxTrialsOpt = None,
    max_epochs: MaxEpochsOpt = 30,
    loss: LossOpt = "mae",
    budget: Annotated[
        str, typer.Option(help="Time budget of the search (retraining and export come after).")
    ] = "10m",
    seed: SearchSeedOpt = 42,
    quantize: Annotated[
        Quantize, typer.Option(help="Quantization modes to try; all ships the best that passes.")
    ] = "all",
    max_accuracy_loss: MaxAccuracyLossOpt = "2%",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output directory (default models/<file>-run)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue a run in --out from its first unfinished stage.")
    ] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """The main job: inspect, tune GRU vs LSTM, export, check on the device, write the report.

    Writes OUT/report.html and report.md, OUT/bundle/ (ready for the device) and OUT/search/.

    Example: forecaster run data/weather_greensboro.csv --target temp_c --budget 5m
    """
    import shlex
    import sys

    from forecaster.job import JobRequest, run_job
    from forecaster.tune.config import TuneConfig, parse_duration
    from forecaster.tune.space import SpaceOverrides

    config = TuneConfig(
        tuner=tuner,
        max_trials=max_trials,
        max_epochs=max_epochs,
        seed=seed,
        time_budget=parse_duration(budget, "--budget"),
        loss=loss,
    )
    # The report quotes the command only when it is the console script, not a test or `-m`.
    command = "forecaster " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    with tune_progress() as on_status:
        request = JobRequest(
            file,
            data,
            split=SplitConfig.parse(split),
            horizon=horizon,
            seasons=seasons_option(season),
            space=SpaceOverrides.from_options(cells=cells),
            tune=config,
            quantize=quantize,
            max_accuracy_loss=parse_max_accuracy_loss(max_accuracy_loss),
            out=out,
            command=command if sys.argv[0].endswith("forecaster") else "",
        )
        outcome = run_job(
            request,
            resume=resume,
            overwrite=overwrite,
            on_stage=print_stage,
            on_status=on_status,
        )
    if outcome.skipped:
        render.console.print(f"Resumed: stages already done: {', '.join(outcome.skipped)}")
    render.say(f"Winner: {outcome.reason}")
    render.console.print(f"Bundle for the device: {outcome.bundle_dir}")
    render.console.print(f"Report: {outcome.report_html} (and {outcome.report_md.name})")
