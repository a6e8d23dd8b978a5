"""`forecaster tune` and `forecaster run`: the GRU-vs-LSTM search, and the whole job around it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    MACHINES,
    OUTPUT,
    SEARCH,
    SPACE,
    BatchSizeOpt,
    CellsOpt,
    FileArg,
    HorizonOpt,
    LagsOpt,
    LossOpt,
    MaxAccuracyLossOpt,
    MaxEpochsOpt,
    MaxTrialsOpt,
    NoSeriesIdsOpt,
    OverwriteOpt,
    QuantizeOpt,
    RuntimeOpt,
    SearchSeedOpt,
    SeasonOpt,
    SplitOpt,
    TunerOpt,
    at_least,
    data_options,
    in_panel,
    out_option,
    parse_max_accuracy_loss,
    require_target,
    seasons_option,
)
from forecaster.cli.progress import print_stage, tune_progress
from forecaster.config import DataConfig, Loss, SplitConfig
from forecaster.tune.config import DEFAULT_TUNE_BUDGET, Role

RangeOpt = Annotated[
    str | None, typer.Option(metavar="MIN:MAX", rich_help_panel=SPACE, help="Range (or one value).")
]


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
        int,
        typer.Option(
            metavar="N",
            callback=at_least(0),
            rich_help_panel=SEARCH,
            help="Early stopping patience in every trial.",
        ),
    ] = 5,
    batch_size: Annotated[int, in_panel(BatchSizeOpt, SEARCH)] = 64,
    loss: Annotated[Loss, in_panel(LossOpt, SEARCH)] = "mae",
    lags: Annotated[bool, in_panel(LagsOpt, SEARCH)] = True,
    no_series_ids: Annotated[bool, in_panel(NoSeriesIdsOpt, SEARCH)] = False,
    budget: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            rich_help_panel=SEARCH,
            help="Wall time of the whole command (90s, 10m, 1h30m or none); its last quarter "
            "retrains the best of each cell.",
        ),
    ] = DEFAULT_TUNE_BUDGET,
    seed: SearchSeedOpt = 42,
    prefer_smaller_within: Annotated[
        str,
        typer.Option(
            metavar="FRACTION",
            rich_help_panel=SEARCH,
            help="Take the smaller model if validation losses are this close.",
        ),
    ] = "2%",
    final_epochs: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            rich_help_panel=SEARCH,
            help="Most epochs to retrain the best models (default: --max-epochs).",
        ),
    ] = None,
    space: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            rich_help_panel=SPACE,
            help="Search-space TOML file; the options below override it.",
        ),
    ] = None,
    windows: Annotated[
        str | None,
        typer.Option(
            metavar="STEPS",
            rich_help_panel=SPACE,
            help="Window lengths: 24,48 or horizon:1,2,4 or season:1,2.",
        ),
    ] = None,
    units: RangeOpt = None,
    layers: RangeOpt = None,
    dropout: RangeOpt = None,
    lr: Annotated[
        str | None,
        typer.Option(
            metavar="MIN:MAX", rich_help_panel=SPACE, help="Learning rates, on a log scale."
        ),
    ] = None,
    residual: Annotated[
        str | None,
        typer.Option(
            metavar="NAMES",
            rich_help_panel=SPACE,
            help="Residual anchors: none,last,seasonal,last_seasonal,decomposition.",
        ),
    ] = None,
    normalize: Annotated[
        str | None,
        typer.Option(
            metavar="NAMES", rich_help_panel=SPACE, help="Normalisations: none,last,mean."
        ),
    ] = None,
    distributed: Annotated[
        Role | None,
        typer.Option(
            metavar="ROLE",
            rich_help_panel=MACHINES,
            help="chief (serves the trials) or worker (runs them).",
        ),
    ] = None,
    oracle: Annotated[
        str | None,
        typer.Option(
            metavar="HOST:PORT",
            rich_help_panel=MACHINES,
            help="The chief's address; cell i uses PORT + i.",
        ),
    ] = None,
    oracle_timeout: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            rich_help_panel=MACHINES,
            help="How long a worker waits for the chief.",
        ),
    ] = "2m",
    out: Annotated[
        Path | None, out_option("Search directory (default: models/FILE-tune-TIME).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            rich_help_panel=OUTPUT,
            help="Continue the search in --out, keeping finished trials.",
        ),
    ] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Search GRU and LSTM settings with Keras Tuner, retrain the best of each, compare them.

    Writes run directories OUT/winner/ and OUT/runner_up/, OUT/comparison.md and OUT/tuner/.

    Example:

        forecaster tune data/weather_greensboro.csv -t temp_c --budget 30m
    """
    require_target(file, data)
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
        parse_budget(budget),
        tuner=tuner,
        max_trials=max_trials,
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch_size,
        seed=seed,
        prefer_smaller_within=parse_fraction(prefer_smaller_within, "--prefer-smaller-within"),
        final_epochs=final_epochs,
        loss=loss,
        lags=lags,
        series_ids=not no_series_ids,
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
            f"{outcome.seconds:.0f} s; --budget none runs the whole schedule."
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
    loss: Annotated[Loss, in_panel(LossOpt, SEARCH)] = "mae",
    lags: Annotated[bool, in_panel(LagsOpt, SEARCH)] = True,
    no_series_ids: Annotated[bool, in_panel(NoSeriesIdsOpt, SEARCH)] = False,
    budget: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            rich_help_panel=SEARCH,
            help="Wall time of the whole run: search, retraining, export, device check and "
            "report (90s, 10m, 1h30m).",
        ),
    ] = "10m",
    seed: SearchSeedOpt = 42,
    quantize: QuantizeOpt = "all",
    runtime: RuntimeOpt = "litert",
    max_accuracy_loss: MaxAccuracyLossOpt = "2%",
    out: Annotated[Path | None, out_option("Output directory (default: models/FILE-run).")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            rich_help_panel=OUTPUT,
            help="Continue a run in --out from its first unfinished stage.",
        ),
    ] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """The main job: inspect, tune GRU vs LSTM, export, check on the device, write the report.

    Writes OUT/report.html and report.md, OUT/bundle/ (ready for the device) and OUT/search/.

    Example:

        forecaster run data/weather_greensboro.csv -t temp_c --budget 5m
    """
    require_target(file, data)
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
        loss=loss,
        lags=lags,
        series_ids=not no_series_ids,
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
            budget=parse_duration(budget, "--budget"),
            quantize=quantize,
            runtime=runtime,
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
