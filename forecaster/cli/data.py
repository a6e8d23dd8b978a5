"""`forecaster data ...`: look at sensor CSV files before training."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from forecaster.cli import render
from forecaster.cli.options import (
    FileArg,
    HorizonOpt,
    SplitOpt,
    at_least,
    data_options,
    in_panel,
)
from forecaster.config import DataConfig, SplitConfig

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
) -> None:
    """Show what forecaster makes of a CSV, and what training on it would do.

    Rows, time column, frequency, columns, gaps, seasons; where the split falls,
    the windows of each part (test origins), and the command to run next.

    Example:

        forecaster data inspect data/weather_greensboro.csv -t temp_c
    """
    from forecaster.config import WindowConfig
    from forecaster.data.inspect import split_parts, summarize
    from forecaster.data.load import load_csv
    from forecaster.model.windows import split_rows

    split_config = SplitConfig.parse(split)
    windows = WindowConfig(window, horizon)
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
    if split != SplitConfig():
        words += ["--split", split.describe()]
    if horizon != 12:
        words += ["--horizon", str(horizon)]
    return " ".join(w if w == "COLUMN" else shlex.quote(w) for w in words)
