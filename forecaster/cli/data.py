"""`forecaster data ...`: look at sensor CSV files before training."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    OUTPUT,
    FileArg,
    HorizonOpt,
    SplitOpt,
    at_least,
    data_options,
    in_panel,
)
from forecaster.config import DataConfig, SplitConfig, WindowConfig

WINDOWS = "Windows"
_PART_NAMES = {"train": "training", "val": "validation", "test": "test"}


@data_options
def data_inspect(
    file: FileArg,
    data: DataConfig,
    split: SplitOpt = "0.7,0.15,0.15",
    window: Annotated[
        int,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            rich_help_panel=WINDOWS,
            help="Input steps per window, as in train.",
        ),
    ] = 48,
    horizon: Annotated[int, in_panel(HorizonOpt, WINDOWS)] = 12,
    show: Annotated[
        int,
        typer.Option(
            metavar="N",
            callback=at_least(1),
            rich_help_panel=OUTPUT,
            help="With --id-col: series to list; the worst first when there are more.",
        ),
    ] = 20,
) -> None:
    """Show what forecaster makes of a CSV, and what training on it would do.

    Rows, time column, frequency, columns, gaps, seasons; where the split falls,
    the windows of each part (test origins), and the command to run next.
    With --id-col, a long file of many series (data/stations.csv --id-col
    station): each series' rows, span, gaps, duplicates and NaNs, and what the
    series have in common.

    Example:

        forecaster data inspect data/weather_greensboro.csv -t temp_c
    """
    from forecaster.data.inspect import split_parts, summarize
    from forecaster.data.load import load_csv
    from forecaster.model.windows import split_rows

    split_config = SplitConfig.parse(split)
    windows = WindowConfig(window, horizon)
    if data.id_col is not None:
        inspect_fleet(file, data, split_config, windows, show)
        return
    loaded = load_csv(file, data)
    rows = split_rows(loaded.n_rows, split_config)
    summary = summarize(loaded, rows.train)
    parts = split_parts(
        loaded, {_PART_NAMES[p]: rows.part(p) for p in ("train", "val", "test")}, windows.span
    )
    render.warn(loaded.report.warnings)
    render.data_summary(file, summary, data.max_gap)
    render.data_plan(
        parts,
        split=split_config.describe(),
        window=window,
        horizon=horizon,
        seasons=summary["seasons used"],
        next_command=next_command(file, data, split_config, horizon),
        choose_from=() if data.targets else loaded.features,
    )


def inspect_fleet(
    file: Path, data: DataConfig, split: SplitConfig, windows: WindowConfig, show: int
) -> None:
    """`data inspect --id-col`: every series of a long file, and the fleet they make."""
    from forecaster.data.fleet import load_fleet
    from forecaster.data.inspect import summarize_fleet
    from forecaster.model.windows import PARTS, split_rows

    fleet = load_fleet(file, data)
    summary = summarize_fleet(
        fleet, windows.span, lambda rows: [split_rows(rows, split).part(p) for p in PARTS]
    )
    render.warn(list(summary.warnings))
    render.fleet_summary(summary, show, split=split.describe(), windows=windows)
    render.next_step(
        next_command(file, data, split, windows.horizon),
        choose_from=() if data.targets else fleet.features,
    )


def next_command(file: Path, data: DataConfig, split: SplitConfig, horizon: int) -> str:
    """`forecaster run` on this file, read the same way: the options that differ from defaults."""
    defaults = DataConfig()
    words = ["forecaster", "run", str(file)]
    words += ["--target", ",".join(data.targets) if data.targets else "COLUMN"]
    if data.features:
        words += ["--features", ",".join(data.features)]
    if data.time_col:
        words += ["--time-col", data.time_col]
    if data.dedupe != defaults.dedupe:
        words += ["--dedupe", data.dedupe]
    if data.max_gap != defaults.max_gap:
        words += ["--max-gap", str(data.max_gap)]
    if data.bad_rows != defaults.bad_rows:
        words += ["--bad-rows", data.bad_rows]
    if data.id_col:
        words += ["--id-col", data.id_col]
    if split != SplitConfig():
        words += ["--split", split.describe()]
    if horizon != 12:
        words += ["--horizon", str(horizon)]
    return " ".join(w if w == "COLUMN" else shlex.quote(w) for w in words)
