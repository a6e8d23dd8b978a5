"""The sample files in data/ load as their README describes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecaster.config import DataConfig
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
