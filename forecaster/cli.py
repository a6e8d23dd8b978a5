"""The `forecaster` command line: options and tables here, the work in the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from forecaster.config import BadRows, DataConfig, Dedupe
from forecaster.errors import ForecasterError

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
    from forecaster.data import load_csv
    from forecaster.inspection import summarize

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


def main() -> None:
    """Entry point of the `forecaster` console script."""
    app()
