"""The `forecaster` command line: options and tables here, the work in the library."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from forecaster.config import (
    BadRows,
    Cell,
    DataConfig,
    Dedupe,
    Loss,
    ModelConfig,
    Normalize,
    PredictMode,
    Quantize,
    Residual,
    SplitConfig,
    TrainConfig,
    WindowConfig,
)
from forecaster.errors import ForecasterError
from forecaster.tune.config import DEFAULT_TUNE_BUDGET, TUNE_RETRAIN_SHARE, Role, TunerName

console = Console()
err_console = Console(stderr=True)


class _Group(TyperGroup):
    """Turns the library's errors into one `Error: ...` line and exit code 1, with no traceback."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ForecasterError as exc:
            err_console.print(f"Error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Group,
    name="forecaster",
    help="Forecast sensor time series with GRU/LSTM models and ship them to small devices.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
data_app = typer.Typer(
    cls=_Group, help="Look at sensor CSV files before training.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


def _split_names(values: list[str] | None) -> tuple[str, ...]:
    """Accept both `--target a --target b` and `--target a,b`."""
    return tuple(n.strip() for v in values or [] for n in v.split(",") if n.strip())


FileArg = Annotated[
    Path, typer.Argument(help="Sensor CSV: a timestamp column and numeric columns.")
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option("--target", "-t", help="Column(s) to forecast; repeat or separate with commas."),
]
FeaturesOpt = Annotated[
    list[str] | None,
    typer.Option(help="Input columns (default: every numeric column); targets are always inputs."),
]
TimeColOpt = Annotated[
    str | None, typer.Option("--time-col", help="Timestamp column (default: detected).")
]
DedupeOpt = Annotated[
    Dedupe,
    typer.Option(help="Duplicate timestamps: error, or merge them with mean or last."),
]
MaxGapOpt = Annotated[
    int,
    typer.Option(
        "--max-gap", min=0, help="Interpolate gaps up to this many steps; longer gaps split."
    ),
]
BadRowsOpt = Annotated[
    BadRows, typer.Option("--bad-rows", help="Rows with junk cells: error, or drop them.")
]


def _data_config(
    target: list[str] | None,
    features: list[str] | None,
    time_col: str | None,
    dedupe: Dedupe,
    max_gap: int,
    bad_rows: BadRows,
) -> DataConfig:
    return DataConfig(
        targets=_split_names(target),
        features=_split_names(features),
        time_col=time_col,
        dedupe=dedupe,
        max_gap=max_gap,
        bad_rows=bad_rows,
    )


def _warn(messages: list[str]) -> None:
    for message in messages:
        err_console.print(f"Warning: {message}", markup=False, highlight=False, soft_wrap=True)


@data_app.command("inspect")
def data_inspect(
    file: FileArg,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    time_col: TimeColOpt = None,
    dedupe: DedupeOpt = "error",
    max_gap: MaxGapOpt = 3,
    bad_rows: BadRowsOpt = "error",
) -> None:
    """Show rows, time span, frequency, column statistics and gaps, and how each gap is handled.

    Example: forecaster data inspect data/weather_greensboro.csv --target temp_c
    """
    from forecaster.data.inspect import summarize
    from forecaster.data.load import load_csv

    data = load_csv(file, _data_config(target, features, time_col, dedupe, max_gap, bad_rows))
    summary = summarize(data)
    _warn(data.report.warnings)

    overview = Table(title=f"{file}", show_header=False, title_justify="left")
    overview.add_column("", style="bold")
    overview.add_column("")
    for key, value in summary["overview"].items():
        overview.add_row(key, str(value))
    console.print(overview)

    columns = Table(title="Columns", title_justify="left")
    for name in ("column", "role", "dtype", "min", "max", "mean", "NaN in file"):
        columns.add_column(name, justify="right" if name in ("min", "max", "mean") else "left")
    for row in summary["columns"]:
        columns.add_row(*(str(v) for v in row.values()))
    console.print(columns)

    gaps = summary["gaps"]
    if gaps:
        table = Table(title=f"Gaps (max gap {max_gap} steps)", title_justify="left")
        for name in gaps[0]:
            table.add_column(name)
        for row in gaps:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    else:
        console.print("No gaps or missing values.")


SplitOpt = Annotated[str, typer.Option(help="Chronological train,validation,test fractions.")]
SeasonOpt = Annotated[
    int | None,
    typer.Option(
        min=1, help="Steps per season for the baselines and MASE (default: from frequency)."
    ),
]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace the output directory if it exists.")]
LossOpt = Annotated[
    Loss, typer.Option(help="What training minimizes: mae (what MASE measures) or mse.")
]


@app.command()
def train(
    file: FileArg,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    time_col: TimeColOpt = None,
    dedupe: DedupeOpt = "error",
    max_gap: MaxGapOpt = 3,
    bad_rows: BadRowsOpt = "error",
    split: SplitOpt = "0.7,0.15,0.15",
    cell: Annotated[Cell, typer.Option(help="Recurrent cell.")] = "gru",
    window: Annotated[int, typer.Option(min=1, help="Input steps per window.")] = 48,
    horizon: Annotated[int, typer.Option(min=1, help="Steps to forecast.")] = 12,
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
            help="Forecast the change from: none, the last value, the seasonal value, or the "
            "last value plus the change one season earlier, weighed per step by a learned gain "
            "(last_seasonal)."
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
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per batch.")] = 64,
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

    data_config = _data_config(target, features, time_col, dedupe, max_gap, bad_rows)
    with _epoch_progress(epochs) as on_epoch:
        outcome = train_run(
            file,
            data_config,
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
            season=season,
            out=out,
            overwrite=overwrite,
            on_epoch=on_epoch,
        )
    result = outcome.result
    if result.interrupted:
        _warn(["training interrupted; kept the best weights so far"])
    console.print(
        f"Trained {cell.upper()} ({result.params:,} parameters): {result.epochs_run} epochs in "
        f"{result.seconds:.1f} s, best epoch {result.best_epoch} "
        f"(val loss {result.best_val_loss:.5f})"
    )
    _print_evaluation(outcome.evaluation, "Test part")
    console.print(f"Run written to {outcome.run_dir}")


RangeOpt = Annotated[str | None, typer.Option(help="MIN:MAX (or one value).", show_default=False)]
HorizonOpt = Annotated[int, typer.Option(min=1, help="Steps to forecast.")]
CellsOpt = Annotated[str, typer.Option(help="Cells to search and compare: gru, lstm or gru,lstm.")]
TunerOpt = Annotated[TunerName, typer.Option(help="hyperband, bayesian or random.")]
MaxTrialsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Most trials per cell (default: Hyperband's schedule, else 10)."),
]
MaxEpochsOpt = Annotated[
    int, typer.Option(min=1, help="Most epochs per trial (Hyperband's max_epochs).")
]
SearchSeedOpt = Annotated[int, typer.Option(help="Seed of the search and of every trial.")]


@app.command()
def tune(
    file: FileArg,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    time_col: TimeColOpt = None,
    dedupe: DedupeOpt = "error",
    max_gap: MaxGapOpt = 3,
    bad_rows: BadRowsOpt = "error",
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
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per batch.")] = 64,
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
    from forecaster.tune.config import (
        Distributed,
        SpaceOverrides,
        TuneConfig,
        load_space_file,
        parse_budget,
        parse_duration,
        parse_fraction,
    )
    from forecaster.tune.run import tune as tune_run

    data_config = _data_config(target, features, time_col, dedupe, max_gap, bad_rows)
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
    overrides = load_space_file(space).merged(options) if space else options
    config = TuneConfig(
        tuner=tuner,
        max_trials=max_trials,
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch_size,
        seed=seed,
        time_budget=parse_budget(time_budget),
        retrain_share=TUNE_RETRAIN_SHARE,
        prefer_smaller_within=parse_fraction(prefer_smaller_within, "--prefer-smaller-within"),
        final_epochs=final_epochs,
        loss=loss,
    )
    cluster = None
    if distributed is not None:
        timeout = parse_duration(oracle_timeout, "--oracle-timeout")
        cluster = Distributed.parse(distributed, oracle, timeout)
    elif oracle is not None:
        raise typer.BadParameter(
            "--oracle needs --distributed chief or worker", param_hint="--oracle"
        )
    with _tune_progress() as on_status:
        outcome = tune_run(
            file,
            data_config,
            split=SplitConfig.parse(split),
            horizon=horizon,
            season=season,
            space=overrides,
            config=config,
            out=out,
            resume=resume,
            overwrite=overwrite,
            distributed=cluster,
            on_status=on_status,
        )
    if outcome.role == "worker":
        console.print(
            f"Worker done: {sum(outcome.trials.values())} trial(s) finished here; the chief "
            f"writes the results to {outcome.out}"
        )
        return
    if outcome.budget_spent:
        trials = sum(outcome.trials.values())
        err_console.print(
            f"The time budget ended the search after {trials} trial(s) in "
            f"{outcome.seconds:.0f} s; --time-budget none runs the whole schedule.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    _print_comparison(outcome.report)
    console.print(f"Winner: {outcome.reason}", markup=False, highlight=False)
    console.print(f"Search written to {outcome.out} (winner/, runner_up/, comparison.md)")


def _print_comparison(report: dict[str, Any]) -> None:
    from forecaster.report.comparison import ROWS, value_of

    cells = report["cells"]
    table = Table(title="Best model per cell, retrained", title_justify="left")
    table.add_column("", no_wrap=True)
    for cell in cells:
        table.add_column(cell.upper(), justify="right", no_wrap=True)
    for label, path, fmt in ROWS:
        table.add_row(label, *(format(value_of(c, path), fmt) for c in cells.values()))
    for key in next(iter(cells.values()))["hyperparameters"]:
        if key != "cell":
            table.add_row(key, *(_hp_text(c["hyperparameters"][key]) for c in cells.values()))
    console.print(table)


def _hp_text(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@contextmanager
def _tune_progress() -> Iterator[Any]:
    """The search on stderr: a live panel on a terminal, one line per finished trial otherwise."""
    from rich.live import Live

    panel = _StatusPanel()
    live = Live(panel, console=err_console, transient=True, refresh_per_second=2)
    interactive = err_console.is_terminal

    def on_status(status: Any) -> None:
        if not interactive:
            if status.message:
                err_console.print(status.message, markup=False, highlight=False, soft_wrap=True)
            return
        panel.update(status)
        if not live.is_started:
            live.start()
        if status.message:
            live.console.print(status.message, markup=False, highlight=False, soft_wrap=True)

    try:
        yield on_status
    finally:
        if live.is_started:
            live.stop()


class _StatusPanel:
    """The latest search status, with its clock advanced at every refresh of the live display."""

    def __init__(self) -> None:
        self.status: Any = None
        self.received = 0.0

    def update(self, status: Any) -> None:
        import time

        self.status, self.received = status, time.monotonic()

    def __rich__(self) -> Table:
        import dataclasses
        import time

        since = time.monotonic() - self.received
        status = self.status
        remaining = None if status.remaining is None else max(0.0, status.remaining - since)
        return _status_panel(
            dataclasses.replace(status, elapsed=status.elapsed + since, remaining=remaining)
        )


def _status_panel(status: Any) -> Table:
    from forecaster.tune.config import format_duration
    from forecaster.tune.hyperparameters import describe

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    epoch = f", {status.cell.upper()} epoch {status.epoch}/{status.epochs}" if status.epochs else ""
    if status.phase == "search":
        total = f" of {status.total}" if status.total else ""
        table.add_row(
            "search",
            f"{status.tuner}: trial {status.done + status.running}{total}, "
            f"{status.done} done, {status.running} running{epoch}",
        )
        if status.current:
            table.add_row("current", f"{status.cell.upper()} {describe(status.current)}")
    else:
        table.add_row(status.phase, f"{status.cell.upper()}{epoch}")
    for cell, (score, values) in sorted(status.best.items()):
        table.add_row(f"best {cell.upper()}", f"val_loss {score:.5g}  {describe(values)}")
    clock = f"{format_duration(status.elapsed)} elapsed"
    if status.remaining is not None:
        clock += f", {format_duration(status.remaining)} of the time budget left"
    table.add_row("time", clock)
    return table


@app.command()
def run(
    file: FileArg,
    target: TargetOpt = None,
    features: FeaturesOpt = None,
    time_col: TimeColOpt = None,
    dedupe: DedupeOpt = "error",
    max_gap: MaxGapOpt = 3,
    bad_rows: BadRowsOpt = "error",
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
    max_accuracy_loss: Annotated[
        str, typer.Option(help="Refuse a mode whose MAE is worse than Keras' by more than this.")
    ] = "2%",
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

    from forecaster.export.ship import parse_accuracy_loss
    from forecaster.job import run_job
    from forecaster.tune.config import SpaceOverrides, TuneConfig, parse_duration

    data_config = _data_config(target, features, time_col, dedupe, max_gap, bad_rows)
    config = TuneConfig(
        tuner=tuner,
        max_trials=max_trials,
        max_epochs=max_epochs,
        seed=seed,
        time_budget=parse_duration(budget, "--budget"),
        loss=loss,
    )
    command = "forecaster " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    def on_stage(stage: str, state: str) -> None:
        if state == "started":
            err_console.print(f"[bold]stage {stage}[/bold]", highlight=False)

    with _tune_progress() as on_status:
        outcome = run_job(
            file,
            data_config,
            split=SplitConfig.parse(split),
            horizon=horizon,
            season=season,
            space=SpaceOverrides.from_options(cells=cells),
            tune_config=config,
            quantize=quantize,
            max_accuracy_loss=parse_accuracy_loss(max_accuracy_loss),
            out=out,
            resume=resume,
            overwrite=overwrite,
            command=command if sys.argv[0].endswith("forecaster") else "",
            on_stage=on_stage,
            on_status=on_status,
        )
    if outcome.skipped:
        console.print(f"Resumed: stages already done: {', '.join(outcome.skipped)}")
    console.print(f"Winner: {outcome.reason}", markup=False, highlight=False)
    console.print(f"Bundle for the device: {outcome.bundle_dir}")
    console.print(f"Report: {outcome.report_html} (and {outcome.report_md.name})")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `forecaster train`.")],
    file: Annotated[
        Path | None, typer.Argument(help="CSV to evaluate on (default: the test part).")
    ] = None,
    season: SeasonOpt = None,
) -> None:
    """Rolling-origin evaluation of a run against naive, seasonal-naive and Holt-Winters baselines.

    Writes metrics.json (metrics_<file>.json for FILE) and plots into the run directory.

    Example: forecaster evaluate models/weather_greensboro-gru-20261123-120000
    """
    from forecaster.runs.train import evaluate as evaluate_run

    _, evaluation = evaluate_run(run_dir, file, season=season)
    _print_evaluation(evaluation, f"{file}" if file else "Test part")


@app.command("export")
def export_command(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by `forecaster train`.")],
    quantize: Annotated[
        Quantize,
        typer.Option(help="none, dynamic, float16, int8, or all (ship the best that passes)."),
    ] = "all",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Bundle directory (default: RUN_DIR/bundle).")
    ] = None,
    max_accuracy_loss: Annotated[
        str, typer.Option(help="Refuse a mode whose MAE is worse than Keras' by more than this.")
    ] = "2%",
    force: Annotated[bool, typer.Option(help="Export the asked mode even if it fails.")] = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert a run to LiteRT, measure each quantization mode, and write the bundle to ship.

    Example: forecaster export models/weather_greensboro-gru-20261123-120000 --quantize all
    """
    from forecaster.export.ship import export, parse_accuracy_loss

    with err_console.status("exporting") as status:
        outcome = export(
            run_dir,
            quantize=quantize,
            out=out,
            max_accuracy_loss=parse_accuracy_loss(max_accuracy_loss),
            force=force,
            overwrite=overwrite,
            on_stage=status.update,
        )
    table = Table(
        title=f"LiteRT on the test windows (Keras MAE {outcome.keras_mae:.4g})",
        title_justify="left",
    )
    for name in ("mode", "bytes", "÷f32", "max|Δ|", "MAE", "ΔMAE", "ms/win", ""):
        table.add_column(name, justify="left" if name in ("mode", "") else "right", no_wrap=True)
    for r in outcome.results:
        if r.error:
            table.add_row(r.mode, "", "", "", "", "", "", f"failed: {r.error}")
            continue
        verdict = "shipped" if r.mode == outcome.shipped else ("ok" if r.passed else "refused")
        table.add_row(
            r.mode,
            f"{r.size_bytes:,}",
            f"{r.ratio_to_float32:.0%}" if r.ratio_to_float32 else "",
            f"{r.max_abs_vs_keras:.3g}",
            f"{r.mae:.4g}",
            f"{r.mae_change:+.2%}",
            f"{r.latency_ms:.3f}",
            verdict,
            style="bold" if verdict == "shipped" else None,
        )
    console.print(table)
    console.print(f"Shipped {outcome.shipped}: {outcome.reason}", markup=False, highlight=False)
    console.print(f"Bundle written to {outcome.bundle_dir}")


@app.command()
def predict(
    bundle: Annotated[
        Path, typer.Argument(help="Bundle directory written by `forecaster export`.")
    ],
    files: Annotated[list[Path], typer.Argument(help="CSV file(s) with the training columns.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output CSV (default: standard output).")
    ] = None,
    mode: Annotated[
        PredictMode,
        Quantize,
        typer.Option(help="last: the steps after each file's end; rolling: every origin."),
    ] = "last",
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows read at a time (bounds memory).")
    ] = 20_000,
    threads: ThreadsOpt = None,
) -> None:
    """Forecast from CSV files with an exported bundle, using LiteRT only (no TensorFlow).

    Writes rows of origin, timestamp, step and one column per target.

    Example: forecaster predict models/weather/bundle data/weather_greensboro.csv --out preds.csv
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from forecaster.device.predict_csv import predict_files
    from forecaster.device.predictor import Predictor

    predictor = Predictor.load(bundle, num_threads=threads)
    sizes = {path: path.stat().st_size if path.exists() else 0 for path in files}
    # Progress by bytes read; shown only for inputs large enough to take a while.
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=err_console,
        transient=True,
        disable=sum(sizes.values()) < 20_000_000,
    ) as progress:
        task = progress.add_task("predict", total=sum(sizes.values()))
        done: dict[Path, int] = {}

        def on_chunk(path: Path, rows: int) -> None:
            done[path] = rows
            read = sum(
                sizes[p] * min(1.0, r / max(_estimated_rows(p, sizes[p]), 1))
                for p, r in done.items()
            )
            progress.update(task, completed=read, description=path.name)

        summary = predict_files(
            predictor, files, out, mode=mode, chunk_rows=chunk_rows, progress=on_chunk
        )
    _warn(summary.warnings)
    if out is not None:
        console.print(
            f"{summary.forecasts:,} forecast(s) of {predictor.horizon} steps from "
            f"{summary.rows:,} rows in {summary.files} file(s) written to {out}"
        )


BundleArg = Annotated[Path, typer.Argument(help="Directory written by `forecaster export`.")]
ThreadsOpt = Annotated[
    int | None, typer.Option(min=1, help="Cores to use, one interpreter each (default: all).")
]


@app.command()
def inspect(bundle: BundleArg) -> None:
    """Show an exported bundle: model, data, quantization, tensors, ops and metrics.

    Example: forecaster inspect models/weather_greensboro-gru-20261123-120000/bundle
    """
    from forecaster.device.predictor import Predictor

    predictor = Predictor.load(bundle)
    b = predictor.bundle
    assert b.export is not None  # Predictor.load refuses bundles without an export
    io = predictor.describe()
    table = Table(title=str(bundle), show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    rows = {
        "model": f"{b.model.cell.upper()} {b.model.units} units x {b.model.layers} layer(s), "
        f"{b.model.params:,} parameters",
        "window -> horizon": f"{b.model.window} -> {b.model.horizon} steps of {b.data.freq}",
        "inputs": ", ".join(b.data.features),
        "targets": ", ".join(b.data.targets),
        "trained on": f"{Path(b.data.source).name}, {b.data.train_start} .. {b.data.train_end}",
        "quantization": b.export.quantization,
        "file": f"{b.export.file}, {b.export.size_bytes:,} bytes, sha256 {b.export.sha256[:16]}...",
        "input tensor": _tensor_text(io["input"]),
        "output tensor": _tensor_text(io["output"]),
        "resizable batch": "yes" if io["resizable_batch"] else "no",
        "ops (main graph)": ", ".join(f"{k} x{v}" for k, v in predictor.ops().items()),
        "versions": ", ".join(f"{k} {v}" for k, v in b.versions.items()),
        "schema": f"{b.schema_version} (forecaster {b.forecaster_version})",
    }
    test = b.metrics.get("test", {})
    if test:
        scores = test["scores"]
        rows["test MASE"] = ", ".join(f"{k} {v['mase']:.3f}" for k, v in scores.items())
    for key, value in rows.items():
        table.add_row(key, value)
    console.print(table)


@app.command()
def bench(
    bundle: BundleArg,
    threads: ThreadsOpt = None,
    seconds: Annotated[
        float, typer.Option(min=0.05, help="Seconds of calls per batch size.")
    ] = 1.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Measure the bundle on this device: latency at batch 1, throughput, peak memory.

    Example: forecaster bench models/weather_greensboro-gru-20261123-120000/bundle --threads 1
    """
    import json

    from forecaster.device.bench import bench_predictor
    from forecaster.device.predictor import Predictor
    from forecaster.files import write_text_atomic

    predictor = Predictor.load(bundle, num_threads=threads)
    result = bench_predictor(predictor, seconds=seconds)
    table = Table(
        title=f"{result['quantization']} on {result['processor']}, {result['threads']} thread(s)",
        title_justify="left",
    )
    for name in ("batch", "p50 ms", "p95 ms", "windows/s"):
        table.add_column(name, justify="right")
    for row in result["results"]:
        table.add_row(
            str(row["batch"]),
            f"{row['p50_ms']:.3f}",
            f"{row['p95_ms']:.3f}",
            f"{row['windows_per_s']:,.0f}",
        )
    console.print(table)
    console.print(f"peak RSS {result['peak_rss_mb']:.0f} MiB")
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(result, indent=2) + "\n")


def _tensor_text(tensor: dict[str, Any]) -> str:
    quant = tensor["quantization"]
    text = f"{tensor['dtype']} {tensor['shape']}"
    return text + (
        f", scale {quant['scale']:.4g}, zero point {quant['zero_point']}" if quant else ""
    )


def _estimated_rows(path: Path, size: int) -> int:
    """Rows in a CSV estimated from its size and the length of its first lines."""
    with path.open("rb") as handle:
        head = handle.read(65536)
    lines = head.count(b"\n")
    return int(size / (len(head) / lines)) if lines else 1


def _print_evaluation(evaluation: Any, title: str) -> None:
    from forecaster.report.plots import LABELS

    table = Table(
        title=f"{title}: {len(evaluation.origins)} origins, horizon {evaluation.truth.shape[1]}, "
        f"season {evaluation.season}",
        title_justify="left",
    )
    table.add_column("method", no_wrap=True)
    for name in ("MAE", "RMSE", "sMAPE%", "MASE", "MASE@1", "model/it"):
        table.add_column(name, justify="right", no_wrap=True)
    for method, scores in evaluation.scores.items():
        ratio = "" if method == "model" else f"{evaluation.skill(method):.2f}"
        table.add_row(
            LABELS.get(method, method),
            f"{scores['mae']:.4g}",
            f"{scores['rmse']:.4g}",
            f"{scores['smape']:.2f}",
            f"{scores['mase']:.3f}",
            f"{scores['per_step']['mase'][0][0]:.3f}",
            ratio,
            style="bold" if method == "model" else None,
        )
    console.print(table)
    verdict = evaluation.verdict()
    if verdict.startswith("WARNING"):
        err_console.print(verdict, style="yellow", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(verdict, markup=False, highlight=False)
    if evaluation.skipped:
        console.print(f"{evaluation.skipped} origin(s) skipped: a baseline's input was in a gap")


@contextmanager
def _epoch_progress(epochs: int) -> Iterator[Any]:
    """An epoch bar on stderr, shown from the first finished epoch so that errors before
    training leave the terminal untouched."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("epoch"),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task("train", total=epochs, stats="")

    def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
        if not progress.live.is_started:
            progress.start()
        stats = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if "loss" in k)
        progress.update(task, completed=epoch, stats=stats)

    try:
        yield on_epoch
    finally:
        if progress.live.is_started:
            progress.stop()


def main() -> None:
    """Entry point of the `forecaster` console script."""
    app()
