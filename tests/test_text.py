"""Forecast rows formatted by numpy are byte for byte what Python's own formatting writes."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecaster.device.text import (
    PAD,
    ForecastLines,
    format_integers,
    format_numbers,
    format_times,
    padded,
)

HOUR = 3600 * 10**9


def percent_g(value: float) -> str:
    """The %-format predict wrote each number with, one row at a time."""
    return "%.6g" % value  # noqa: UP031


def texts(rows: np.ndarray) -> list[str]:
    return [bytes(row).replace(bytes([PAD]), b"").decode() for row in rows]


EDGES = [
    0.0,
    -0.0,
    np.nan,
    np.inf,
    -np.inf,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    1e-5,
    1e-4,
    0.5,
    2.5,
    99999.95,  # just below a tie: 99999.9
    999999.5,  # a tie: rounds to even
    999999.4,
    1234565.0,
    1234575.0,
    100000.0,
    1e6,
    9.999995,
    9.9999949,
    0.000099999951,
    1e22,
    1e-17,
    1e99,
    1e100,
    9.999995e99,
    1e-99,
    1e-100,
    123456789012.0,
    20.0,
    21.5,
    -0.00001234,
]


def test_numbers_are_written_as_percent_g_would():
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            EDGES,
            rng.normal(20, 5, 20_000),  # sensor-like values
            rng.normal(0, 1, 20_000) * 10.0 ** rng.integers(-110, 110, 20_000),
            rng.normal(0, 0.01, 5_000),
            np.rint(rng.normal(0, 1e4, 5_000)) / 10.0 ** rng.integers(0, 8, 5_000),  # round ones
            rng.normal(0, 1, 5_000).astype(np.float32),
            # Next to powers of ten, where the exponent and the rounding change.
            np.nextafter(10.0 ** rng.integers(-30, 30, 5_000), rng.choice([0, np.inf], 5_000)),
            10.0 ** rng.integers(-30, 30, 5_000) * (1 - 5e-7 * rng.random(5_000)),
        ]
    )
    assert texts(format_numbers(values)) == [percent_g(v) for v in values.tolist()]


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=50))
def test_any_float_is_written_as_percent_g_would(values):
    assert texts(format_numbers(np.array(values, np.float64))) == [percent_g(v) for v in values]


def test_integers_and_times_are_written_as_str_and_strftime_would():
    numbers = np.concatenate([np.arange(-1001, 1002), [10**18, -(10**18), 999_999]])
    assert texts(format_integers(numbers)) == [str(v) for v in numbers.tolist()]
    rng = np.random.default_rng(2)
    # Whole seconds and not, before 1970 too, through nanosecond timestamps' whole range.
    stamps = rng.integers(-(2**62), 2**62, 2_000).astype("datetime64[ns]")
    expected = pd.DatetimeIndex(stamps).strftime("%Y-%m-%d %H:%M:%S").tolist()
    assert texts(format_times(stamps)) == expected


def reference(
    prefix: str, keys: np.ndarray, numbers: np.ndarray, step: int, leads: list[str] | None
) -> str:
    """The rows as predict wrote them with a %-format per row."""
    horizon = numbers.shape[1]
    lines = []
    for i, key in enumerate(keys.tolist()):
        for k in range(horizon):
            if step == 1:
                origin, stamp = str(key), str(key + k + 1)
            else:
                origin, stamp = (
                    pd.Timestamp(v).strftime("%Y-%m-%d %H:%M:%S")
                    for v in (key, key + (k + 1) * step)
                )
            cells = ",".join(map(percent_g, numbers[i, k].tolist()))
            lead = "" if leads is None else leads[i]
            lines.append(f"{prefix}{lead}{origin},{stamp},{k + 1},{cells}\n")
    return "".join(lines)


def csv_field(text: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([text])
    return buffer.getvalue().rstrip("\r\n")


@pytest.mark.parametrize(("horizon", "columns"), [(1, 1), (3, 5), (12, 3)])
def test_lines_are_what_a_percent_format_per_row_wrote(horizon, columns):
    rng = np.random.default_rng(horizon)
    n = 70
    # Origins with gaps between some of them, as a file with missing rows gives.
    keys = (np.cumsum(rng.choice([1, 1, 1, 2, 40], n)) + 1_700_000_000 * 10**9 // HOUR) * HOUR
    numbers = rng.normal(15, 20, (n, horizon, columns))
    numbers[0, 0, 0] = np.nan
    ids = ["north,1", 'say "hi"', "süd"]
    lead_text = [csv_field(i) + "," for i in ids]
    which = rng.integers(0, len(ids), n)
    prefix = csv_field('logs/a,"b" 100%.csv') + ","
    lines = ForecastLines(prefix, horizon, HOUR, times=True)
    leads = padded(lead_text)[which]
    columns = list(np.moveaxis(numbers, 2, 0))
    got = b"".join(lines.text(keys.astype("datetime64[ns]"), columns, leads, rows=25)).decode()
    assert got == reference(prefix, keys, numbers, HOUR, [lead_text[w] for w in which])
    # Without a time column the origin and timestamp are row numbers.
    rows = np.arange(n) * 3 + 7
    numbered = ForecastLines("", horizon, 1, times=False).text(rows, columns, rows=10)
    got = b"".join(numbered).decode()
    assert got == reference("", rows, numbers, 1, None)
