"""Each forecast-quality technique fixes the failure it is for, and the exported model keeps it.

Synthetic series isolate the failures seen on real sensor data: a trend that leaves the training
range, a level shift in the test part, and a weekly pattern on 30-minute data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from forecaster.config import DataConfig, ModelConfig, TrainConfig, WindowConfig
from forecaster.data.synthetic import make_series, write_csv
from forecaster.runs.train import RunOutcome, train

pytestmark = pytest.mark.slow

PLAIN = ModelConfig(units=16, residual="none", normalize="none")
ANCHORED = ModelConfig(units=16)  # the defaults: residual and normalization on the last value
TRAINING = TrainConfig(epochs=15, batch_size=32, patience=5)


def fit(path: Path, model: ModelConfig, out: Path, *, calendar: bool = False) -> RunOutcome:
    return train(
        path,
        DataConfig(targets=("temp",)),
        window=WindowConfig(24, 12, calendar=calendar),
        model=model,
        training=TRAINING,
        out=out,
    )


def mase(run: RunOutcome, method: str = "model") -> float:
    return float(run.evaluation.scores[method]["mase"])


def test_trend_leaving_the_training_range(tmp_path):
    path = write_csv(make_series(rows=1200, seed=11, trend=1.0, noise=0.2), tmp_path / "t.csv")
    plain = fit(path, PLAIN, tmp_path / "plain")
    anchored = fit(path, ANCHORED, tmp_path / "anchored")
    assert mase(plain) > mase(plain, "naive")  # the failure: worse than "tomorrow = today"
    assert mase(anchored) < 0.5 * mase(anchored, "naive")
    assert mase(anchored) < 0.2 * mase(plain)

    from forecaster.export.ship import export

    outcome = export(anchored.run_dir, quantize="all")
    for result in outcome.results:  # every LiteRT mode keeps the gain over naive
        assert result.error is None
        assert result.mase < 0.5 * mase(anchored, "naive"), result
    shipped = next(r for r in outcome.results if r.mode == outcome.shipped)
    assert shipped.passed and abs(shipped.mae_change) <= 0.02


def test_level_shift(tmp_path):
    frame = make_series(rows=1200, seed=12, level_shift=12.0, shift_at=0.9, noise=0.2)
    path = write_csv(frame, tmp_path / "s.csv")
    plain = fit(path, PLAIN, tmp_path / "plain")
    anchored = fit(path, ANCHORED, tmp_path / "anchored")
    assert mase(plain) > mase(plain, "naive")
    assert mase(anchored) < 0.5 * mase(anchored, "naive")
    # Seasonal naive is the best baseline here; the anchored model measured 0.49 of it trained
    # on MSE, 0.51 on the MAE default.
    assert mase(anchored) < 0.6 * mase(anchored, "seasonal_naive")


def test_weekly_pattern_on_half_hourly_data(tmp_path):
    frame = make_series(rows=48 * 7 * 8, freq="30min", seed=13, weekend=-8.0, noise=0.2)
    path = write_csv(frame, tmp_path / "w.csv")
    plain = fit(path, PLAIN, tmp_path / "plain")
    calendar = fit(path, ANCHORED, tmp_path / "calendar", calendar=True)
    assert calendar.bundle.data.calendar == ("day", "week")
    assert mase(calendar) < 0.9 * mase(plain)
    assert mase(calendar) < 0.5 * mase(calendar, "naive")
