"""Arguments and options shared by several commands, each declared once."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from forecaster.config import BadRows, DataConfig, Dedupe, Loss, parse_fraction
from forecaster.errors import ConfigError
from forecaster.tune.config import TunerName

FileArg = Annotated[
    Path, typer.Argument(help="Sensor CSV: a timestamp column and numeric columns.")
]
RunDirArg = Annotated[Path, typer.Argument(help="Run directory written by `forecaster train`.")]
BundleArg = Annotated[Path, typer.Argument(help="Directory written by `forecaster export`.")]

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

SplitOpt = Annotated[str, typer.Option(help="Chronological train,validation,test fractions.")]
HorizonOpt = Annotated[int, typer.Option(min=1, help="Steps to forecast.")]
SeasonOpt = Annotated[
    str | None,
    typer.Option(
        metavar="STEPS",
        help="Seasons in steps, such as 24 or 48,336; the first sets MASE's scale "
        "(default: the seasons the training part shows).",
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
    Loss, typer.Option(help="What training minimizes: mae (what MASE measures) or mse.")
]
BatchSizeOpt = Annotated[int, typer.Option(min=1, help="Windows per batch.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Output directory.")]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace the output directory if it exists.")]

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
MaxAccuracyLossOpt = Annotated[
    str, typer.Option(help="Refuse a mode whose MAE is worse than Keras' by more than this.")
]
ThreadsOpt = Annotated[
    int | None, typer.Option(min=1, help="Cores to use, one interpreter each (default: all).")
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
)


def data_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` the six data options in place of its `data` parameter.

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
) -> DataConfig:
    """The DataConfig of the data options."""
    return DataConfig(
        targets=_split_names(target),
        features=_split_names(features),
        time_col=time_col,
        dedupe=dedupe,
        max_gap=max_gap,
        bad_rows=bad_rows,
    )


def _split_names(values: list[str] | None) -> tuple[str, ...]:
    """Accept both `--target a --target b` and `--target a,b`."""
    return tuple(n.strip() for v in values or [] for n in v.split(",") if n.strip())


def parse_max_accuracy_loss(text: str) -> float:
    """--max-accuracy-loss as a fraction; up to 1000%, the range `export` always took."""
    return parse_fraction(text, "--max-accuracy-loss", below=10)
