"""Regenerate the sample CSVs in this folder from the pvlib and river wheels.

    pip download --no-deps -d WHEELS pvlib==0.16.1 river==0.26.1
    pip download --no-deps -d WHEELS pvlib==0.10.5
    python data/make_samples.py WHEELS

Writes weather_greensboro.csv (NREL TMY3, Greensboro NC, from pvlib 0.16.1),
water_flow.csv (pipeline water flow, from river) and stations.csv (four weather
stations' typical years in one long file, from pvlib 0.10.5) next to this script
and prints a short check of each: rows, span, NaNs/sentinels, duplicates and gaps.
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

# pvlib 0.16.1's wheel holds three of these files; 0.10.5's also holds its PVGIS test file.
STATIONS_WHEEL = "pvlib-0.10.5-*.whl"
# Columns kept for every station: each source's names for them differ.
STATION_COLUMNS = ("temp_c", "rel_humidity")


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


def _station_frame(name: str, values: pd.DataFrame) -> pd.DataFrame:
    """One station's 8760 hourly rows (hour-ending, local standard time) on the 2021 calendar."""
    if len(values) != 8760:
        raise ValueError(f"{name}: {len(values)} rows, not the 8760 hours of a typical year")
    bad = values.isna() | (values <= -9000) | (values >= 999)  # TMY3 -9900, TMY2 9999
    if bad.any().any():
        raise ValueError(f"{name}: missing or sentinel values: {bad.sum().to_dict()}")
    start = pd.Timestamp(f"{WEATHER_YEAR}-01-01 01:00")
    frame = pd.DataFrame({"time": pd.date_range(start, periods=8760, freq="h"), "station": name})
    for column in STATION_COLUMNS:
        frame[column] = values[column].to_numpy()
    return frame


def _tmy3(wheels: Path, member: str, name: str) -> pd.DataFrame:
    with open_member(wheels, STATIONS_WHEEL, f"pvlib/data/{member}") as f:
        raw = pd.read_csv(f, skiprows=1)  # line 1 is station metadata
    values = raw[["Dry-bulb (C)", "RHum (%)"]].set_axis(STATION_COLUMNS, axis=1)
    return _station_frame(name, values)


def _tmy2(wheels: Path, member: str, name: str) -> pd.DataFrame:
    # Fixed-width lines after one metadata line; temperatures in tenths of a degree.
    with open_member(wheels, STATIONS_WHEEL, f"pvlib/data/{member}") as f:
        lines = f.read().decode("ascii").splitlines()[1:]
    values = pd.DataFrame(
        {
            "temp_c": [int(line[67:71]) / 10 for line in lines],
            "rel_humidity": [int(line[79:82]) for line in lines],
        }
    )
    return _station_frame(name, values)


def _pvgis(wheels: Path, member: str, name: str, utc_offset: int) -> pd.DataFrame:
    # 16 lines of location and month-year table, then hourly rows in UTC, then a legend.
    with open_member(wheels, STATIONS_WHEEL, f"pvlib/data/{member}") as f:
        raw = pd.read_csv(f, skiprows=16, nrows=8760)
    # Rows 00:00 to 23:00 UTC; 00:00 UTC is 01:00 at a UTC+1 station, so row i is i hours after
    # 01:00 local on 1 January, as in the TMY files.
    if utc_offset != 1 or raw["time(UTC)"].iloc[0][-4:] != "0000":
        raise ValueError(f"{name}: expected UTC+1 and a first row at 00:00 UTC")
    values = raw[["T2m", "RH"]].set_axis(STATION_COLUMNS, axis=1)
    return _station_frame(name, values)


def stations(wheels: Path) -> pd.DataFrame:
    """Four stations' typical years, hourly temperature and humidity, in one long file."""
    frames = [
        _tmy3(wheels, "723170TYA.CSV", "greensboro"),
        _tmy2(wheels, "12839.tm2", "miami"),
        _pvgis(wheels, "tmy_45.000_8.000_2005_2016.csv", "piedmont", utc_offset=1),
        _tmy3(wheels, "703165TY.csv", "sand_point"),
    ]
    # Sorted by time, then station in the order above, as a gateway logging all of them every
    # hour would write them (a stable sort on time keeps the stations' order within an hour).
    long = pd.concat(frames, ignore_index=True)
    return long.sort_values("time", kind="stable").reset_index(drop=True)


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
    fleet = stations(wheels)
    fleet.to_csv(OUT / "stations.csv", index=False, date_format=TIME_FORMAT)
    for station, frame in fleet.groupby("station", sort=False):
        report(f"stations.csv {station}", frame.reset_index(drop=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
