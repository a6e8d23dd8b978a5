"""Arguments and options shared by several commands, each declared once.

Help is read on 80-column terminals: metavars are words (FILE, COLUMN, N, DURATION), help lines
are short, and options are grouped in panels (`rich_help_panel`) in the order a run needs them.
"""

from __future__ import annotations

import copy
import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from forecaster.config import (
    BadRows,
    DataConfig,
    Dedupe,
    Loss,
    Quantize,
    Runtime,
    parse_fraction,
)
from forecaster.errors import ConfigError, UsageError
from forecaster.tune.config import TunerName

# Help panels, in the order they appear.
DATA = "Data"
MODEL = "Model"
TRAINING = "Training"
SEARCH = "Search"
SPACE = "Search space"
MACHINES = "Several machines"
EXPORT = "Export"
OUTPUT = "Output"


def at_least(low: float) -> Callable[[Any], Any]:
    """A callback refusing a number below `low` as a usage error (exit code 2)."""

    def check(value: Any) -> Any:
        if value is not None and value < low:
            raise typer.BadParameter(f"must be at least {low:g}, not {value:g}")
        return value

    return check


def between(low: float, high: float) -> Callable[[Any], Any]:
    """A callback refusing a number outside [low, high] as a usage error (exit code 2)."""

    def check(value: Any) -> Any:
        if value is not None and not low <= value <= high:
            raise typer.BadParameter(f"must be between {low:g} and {high:g}, not {value:g}")
        return value

    return check


def in_panel(option: Any, panel: str) -> Any:
    """The typer.Option of a shared option below, shown in another panel by one command.

    Used as `horizon: Annotated[int, in_panel(HorizonOpt, MODEL)] = 12`.
    """
    moved = copy.copy(typing.get_args(option)[1])
    moved.rich_help_panel = panel
    return moved


FileArg = Annotated[
    Path,
    typer.Argument(metavar="FILE", help="Sensor CSV: a time column and numeric columns."),
]
RunDirArg = Annotated[
    Path, typer.Argument(metavar="RUN_DIR", help="Run directory from `forecaster train`.")
]
BundleArg = Annotated[
    Path, typer.Argument(metavar="BUNDLE", help="Bundle directory from `forecaster export`.")
]

TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        "-t",
        metavar="COLUMN",
        rich_help_panel=DATA,
        help="Column(s) to forecast; repeat, or a,b.",
    ),
]
FeaturesOpt = Annotated[
    list[str] | None,
    typer.Option(
        metavar="COLUMN",
        rich_help_panel=DATA,
        help="Input columns (default: all numeric); targets are inputs too.",
    ),
]
TimeColOpt = Annotated[
    str | None,
    typer.Option(
        "--time-col", metavar="COLUMN", rich_help_panel=DATA, help="Time column (default: found)."
    ),
]
DedupeOpt = Annotated[
    Dedupe,
    typer.Option(
        metavar="HOW",
        rich_help_panel=DATA,
        help="Duplicate timestamps: error, or merge by mean or last.",
    ),
]
MaxGapOpt = Annotated[
    int,
    typer.Option(
        "--max-gap",
        metavar="N",
        callback=at_least(0),
        rich_help_panel=DATA,
        help="Fill gaps up to N steps; longer gaps split the series.",
    ),
]
BadRowsOpt = Annotated[
    BadRows,
    typer.Option(
        "--bad-rows",
        metavar="HOW",
        rich_help_panel=DATA,
        help="Rows with junk cells: error, or drop them.",
    ),
]
IdColOpt = Annotated[
    str | None,
    typer.Option(
        "--id-col",
        metavar="COLUMN",
        rich_help_panel=DATA,
        help="A long file of many series: the column naming each row's series.",
    ),
]

SplitOpt = Annotated[
    str,
    typer.Option(
        metavar="FRACTIONS", rich_help_panel=DATA, help="Train,validation,test parts, in order."
    ),
]
HorizonOpt = Annotated[
    int,
    typer.Option(
        metavar="N", callback=at_least(1), rich_help_panel=DATA, help="Steps to forecast."
    ),
]
SeasonOpt = Annotated[
    str | None,
    typer.Option(
        metavar="STEPS",
        rich_help_panel=DATA,
        help="Seasons in steps, e.g. 24 or 48,336; the first sets MASE's scale "
        "(default: found in the data).",
    ),
]


def seasons_option(text: str | None) -> tuple[int, ...] | None:
    """--season as a tuple of steps; a malformed value is a usage error."""
    from forecaster.data.seasons import parse_seasons  # numpy and pandas: not at --help

    if text is None:
        return None
    try:
        return parse_seasons(text)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--season") from None


LossOpt = Annotated[
    Loss,
    typer.Option(
        metavar="LOSS",
        rich_help_panel=TRAINING,
        help="What training minimizes: mae (what MASE measures) or mse.",
    ),
]
LagsOpt = Annotated[
    bool,
    typer.Option(
        "--lags/--no-lags",
        rich_help_panel=MODEL,
        help="Feed the value one season before each forecast step, for seasons longer than the "
        "window, beside the window and on a linear path to the output.",
    ),
]
NoSeriesIdsOpt = Annotated[
    bool,
    typer.Option(
        "--no-series-ids",
        rich_help_panel=MODEL,
        help="With --id-col: do not give the model each window's series as one-hot inputs (an "
        "id embedding, on by default: better on the fleets of bench/fleet_id.md).",
    ),
]
BatchSizeOpt = Annotated[
    int,
    typer.Option(
        metavar="N", callback=at_least(1), rich_help_panel=TRAINING, help="Windows per batch."
    ),
]


def out_option(help: str) -> Any:
    """The --out option of a command writing a directory; `help` says which and its default."""
    return typer.Option("--out", "-o", metavar="DIR", rich_help_panel=OUTPUT, help=help)


OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite", rich_help_panel=OUTPUT, help="Replace the output directory if it exists."
    ),
]

CellsOpt = Annotated[
    str,
    typer.Option(
        metavar="CELLS", rich_help_panel=SEARCH, help="Cells to compare: gru, lstm or gru,lstm."
    ),
]
TunerOpt = Annotated[
    TunerName,
    typer.Option(metavar="NAME", rich_help_panel=SEARCH, help="hyperband, bayesian or random."),
]
MaxTrialsOpt = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        rich_help_panel=SEARCH,
        help="Most trials per cell (default: Hyperband's schedule, else 10).",
    ),
]
MaxEpochsOpt = Annotated[
    int,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        rich_help_panel=SEARCH,
        help="Most epochs per trial (Hyperband's max_epochs).",
    ),
]
SearchSeedOpt = Annotated[
    int,
    typer.Option(metavar="N", rich_help_panel=SEARCH, help="Seed of the search and its trials."),
]
QuantizeOpt = Annotated[
    Quantize,
    typer.Option(
        metavar="MODE",
        rich_help_panel=EXPORT,
        help="none, dynamic, float16, int8, int16 (int8 weights, int16 activations), or all "
        "(ship the smallest that passes).",
    ),
]
RuntimeOpt = Annotated[
    Runtime,
    typer.Option(
        metavar="RUNTIME",
        rich_help_panel=EXPORT,
        help="litert: LiteRT on a CPU; micro: TensorFlow Lite Micro (full integer, batch 1, "
        "its tensor arena measured).",
    ),
]
MaxAccuracyLossOpt = Annotated[
    str,
    typer.Option(
        metavar="FRACTION",
        rich_help_panel=EXPORT,
        help="Refuse a mode whose MAE is worse than Keras' by more (2% or 0.02); a mode "
        "whose worst forecast moves more than Keras' test MAE is refused too.",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        callback=at_least(1),
        help="Cores to use, one interpreter each (default: all).",
    ),
]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD  # the kind of the parameters around them
    return inspect.Parameter(name, kind, annotation=annotation, default=default)


# How every command reads its CSV; a command asks for them with a `data: DataConfig` parameter.
_DATA_OPTIONS = (
    _option("target", TargetOpt, None),
    _option("features", FeaturesOpt, None),
    _option("time_col", TimeColOpt, None),
    _option("dedupe", DedupeOpt, "error"),
    _option("max_gap", MaxGapOpt, 3),
    _option("bad_rows", BadRowsOpt, "error"),
    _option("id_col", IdColOpt, None),
)


def data_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` the seven data options in place of its `data` parameter.

    Typer sees the options; `command` receives the DataConfig built from them.
    """
    signature = inspect.signature(command, eval_str=True)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("data")
    params[at : at + 1] = _DATA_OPTIONS

    @functools.wraps(command)
    def with_data(**kwargs: Any) -> None:
        values = {p.name: kwargs.pop(p.name) for p in _DATA_OPTIONS}
        command(data=data_config(**values), **kwargs)

    # Typer reads the parameters from the signature and the annotations.
    with_data.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    with_data.__annotations__ = {p.name: p.annotation for p in params}
    return with_data


def data_config(
    *,
    target: list[str] | None,
    features: list[str] | None,
    time_col: str | None,
    dedupe: Dedupe,
    max_gap: int,
    bad_rows: BadRows,
    id_col: str | None,
) -> DataConfig:
    """The DataConfig of the data options."""
    return DataConfig(
        targets=_split_names(target),
        features=_split_names(features),
        time_col=time_col,
        dedupe=dedupe,
        max_gap=max_gap,
        bad_rows=bad_rows,
        id_col=id_col,
    )


def require_target(file: Path, data: DataConfig) -> None:
    """A command that trains needs --target: without it, name the columns it could be.

    A usage error (exit code 2); a file that cannot be read is reported as such instead.
    """
    if data.targets:
        return
    from forecaster.data.load import sensor_columns

    columns = sensor_columns(file, data.time_col)
    example = f", e.g. --target {columns[0]}" if columns else ""
    raise UsageError(
        f"no target column chosen for {file}; its numeric columns are: {', '.join(columns)}. "
        f"Pass --target with one of them{example}"
    )


def _split_names(values: list[str] | None) -> tuple[str, ...]:
    """Accept both `--target a --target b` and `--target a,b`."""
    return tuple(n.strip() for v in values or [] for n in v.split(",") if n.strip())


def parse_max_accuracy_loss(text: str) -> float:
    """--max-accuracy-loss as a fraction; up to 1000%, the range `export` always took."""
    return parse_fraction(text, "--max-accuracy-loss", below=10)
