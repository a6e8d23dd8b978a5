"""Real sensor series that PyPI packages ship, written as forecaster CSVs for the quality benchmark.

Each source is a package's own data file, read offline: nothing is downloaded at run time.
vega_datasets' hourly `seattle-temps` was tried and left out (its daily `seattle-weather`, NOAA
measurements, is used): it is a smoothed climatological curve (each day repeats the one before
to within 0.1-0.3 F), not measurements, which Holt-Winters fits almost exactly (test MASE 0.52
against the model's 2.3 in one run). statsmodels' monthly El Nino sea temperatures wait for
calendar-month support: forecaster refuses monthly timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Series:
    """One benchmark series: where it comes from and how to forecast it."""

    name: str
    target: str
    source: str  # package and file, for the results table
    what: str
    write: Callable[[Path], None]


def _copy_sample(name: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes((DATA / name).read_bytes())

    return write


def _co2(path: Path) -> None:
    import statsmodels.api as sm

    frame = sm.datasets.co2.load_pandas().data.rename(columns={"co2": "co2_ppm"})
    frame.index.name = "time"
    frame.to_csv(path)


def _taylor(path: Path) -> None:
    from pmdarima.datasets import load_taylor

    demand = load_taylor(as_series=True)
    # Taylor (2003): half-hourly demand in England and Wales from Monday 5 June 2000, 12 weeks.
    index = pd.date_range("2000-06-05", periods=len(demand), freq="30min", name="time")
    pd.DataFrame({"demand_mw": demand.to_numpy()}, index=index).to_csv(path)


def _seattle(path: Path) -> None:
    from vega_datasets import local_data

    # NOAA daily measurements at Seattle 2012-2015; the text column ("rain", "sun") is left out.
    frame = local_data.seattle_weather().rename(columns={"date": "time"}).set_index("time")
    frame[["temp_max", "temp_min", "precipitation", "wind"]].to_csv(path)


SERIES: tuple[Series, ...] = (
    Series(
        "weather_greensboro",
        "temp_c",
        "data/ (pvlib TMY3 723170)",
        "hourly air temperature, 5 covariates",
        _copy_sample("weather_greensboro.csv"),
    ),
    Series(
        "water_flow",
        "flow_lps",
        "data/ (river WaterFlow)",
        "hourly water flow in a pipe network, real gaps",
        _copy_sample("water_flow.csv"),
    ),
    Series(
        "co2_mauna_loa",
        "co2_ppm",
        "statsmodels `datasets.co2`",
        "weekly CO2 at Mauna Loa 1958-2001, trend leaves the training range, NaNs",
        _co2,
    ),
    Series(
        "taylor_demand",
        "demand_mw",
        "pmdarima `datasets.load_taylor`",
        "half-hourly electricity demand, England and Wales, summer 2000",
        _taylor,
    ),
    Series(
        "seattle_weather",
        "temp_max",
        "vega_datasets `seattle-weather`",
        "daily maximum temperature at Seattle 2012-2015, 3 covariates",
        _seattle,
    ),
)
