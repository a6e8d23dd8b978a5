"""`forecaster data ...`: look at sensor CSV files before training."""

from __future__ import annotations

from forecaster.cli import render
from forecaster.cli.options import FileArg, data_options
from forecaster.config import DataConfig


@data_options
def data_inspect(file: FileArg, data: DataConfig) -> None:
    """Show rows, time span, frequency, columns, gaps and their handling, and the seasons found.

    Writes nothing; the data options mean what they mean in train, tune and run.

    Example:

        forecaster data inspect data/weather_greensboro.csv -t temp_c
    """
    from forecaster.config import SplitConfig
    from forecaster.data.inspect import summarize
    from forecaster.data.load import load_csv
    from forecaster.model.windows import split_rows

    loaded = load_csv(file, data)
    summary = summarize(loaded, split_rows(loaded.n_rows, SplitConfig()).train)
    render.warn(loaded.report.warnings)
    render.data_summary(file, summary, data.max_gap)
