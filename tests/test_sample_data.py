"""The sample files in data/ load as their README describes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecaster.config import DataConfig
from forecaster.data.fleet import load_fleet
from forecaster.data.load import load_csv

DATA = Path(__file__).resolve().parent.parent / "data"


def test_weather_sample_is_a_complete_hourly_multivariate_series():
    data = load_csv(DATA / "weather_greensboro.csv", DataConfig(targets=("temp_c",)))
    assert data.freq == pd.Timedelta("1h")
    assert data.n_rows == 2880
    assert data.segments == ((0, 2880),)
    assert data.features == (
        "temp_c",
        "dewpoint_c",
        "rel_humidity",
        "pressure_mbar",
        "wind_speed_ms",
        "ghi_wm2",
    )


def test_water_flow_sample_has_real_gaps_that_split_it():
    data = load_csv(DATA / "water_flow.csv", DataConfig(targets=("flow_lps",)))
    assert data.freq == pd.Timedelta("1h")
    assert data.report.missing_timestamps == 111
    assert data.report.count("split") == 6
    assert len(data.segments) == 7


def test_stations_sample_is_four_complete_hourly_series_in_one_long_file():
    fleet = load_fleet(DATA / "stations.csv", DataConfig(targets=("temp_c",), id_col="station"))
    assert fleet.ids == ("greensboro", "miami", "piedmont", "sand_point")
    assert fleet.features == ("temp_c", "rel_humidity")
    for series in fleet:
        assert series.freq == pd.Timedelta("1h")
        assert series.n_rows == 8760
        assert series.segments == ((0, 8760),)
        assert series.frame.index[0] == pd.Timestamp("2021-01-01 01:00")
    # Same station, same hours: the long file's Greensboro is the one-series sample's.
    single = load_csv(DATA / "weather_greensboro.csv", DataConfig(targets=("temp_c",)))
    greensboro = fleet.series[0].frame["temp_c"].iloc[:2880]
    assert greensboro.equals(single.frame["temp_c"])
