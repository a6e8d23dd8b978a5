"""7. Tuning: wall time of the default `forecaster tune` on a 20k-row, 3-channel CSV.

The default search (Hyperband over both cells, 30 epochs at most per trial, then retraining the
best of each) is run as a child with a time cap; if the cap ends it, the section reports how
far the search got instead of a wall time.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

from bench import fixtures
from bench.fixtures import Context
from bench.results import Section, Table
from bench.timing import forecaster_command, run_measured

ROWS = 20_000
PLACEHOLDER = "measured once `forecaster tune` lands"


def _tuning_exists() -> bool:
    import importlib.util

    return importlib.util.find_spec("forecaster.tuning") is not None


def _planned_trials() -> int | None:
    """Trials the default search plans over both cells, if forecaster can say."""
    try:
        from forecaster.tuning import hyperband_trials
        from forecaster.tuning_config import TuneConfig

        config = TuneConfig()
        per_cell = config.trials_per_cell or hyperband_trials(
            config.max_epochs, config.hyperband_factor
        )
        return 2 * per_cell
    except (ImportError, AttributeError, TypeError):
        return None


def _completed(out: Path) -> int:
    """Trials Keras Tuner recorded as completed under OUT/tuner."""
    done = 0
    for path in out.glob("tuner/*/trial_*/trial.json"):
        try:
            done += json.loads(path.read_text()).get("status") == "COMPLETED"
        except (OSError, json.JSONDecodeError):
            continue
    return done


def run(ctx: Context) -> Section:
    """Run the default tune under a cap, or leave the placeholder."""
    table = Table(["measure", "value"], title=f"`forecaster tune` on {ROWS:,} rows x 3 channels")
    section = Section("tuning", "", tables=[table])
    if not _tuning_exists():
        table.add("default tune wall time", PLACEHOLDER)
        return section
    cap = min(ctx.settings.tune_cap_s, ctx.remaining() - 30)
    if ctx.settings.tune_cap_s <= 0 or cap < 60:
        reason = "full run only" if ctx.settings.tune_cap_s <= 0 else "no time left in the run"
        table.add("default tune wall time", f"not measured: {reason}")
        return section
    from forecaster.synthetic import make_series, write_csv

    csv = write_csv(make_series(rows=ROWS, seed=fixtures.SEED), ctx.work / "tune.csv")
    out = ctx.work / "tune"
    command = [
        *forecaster_command(),
        "tune",
        str(csv),
        "--target",
        fixtures.TARGET,
        "--out",
        str(out),
    ]
    ctx.log(f"forecaster tune (defaults), capped at {cap:.0f} s")
    done = run_measured(
        command, timeout_s=cap, stop_signal=signal.SIGINT, cwd=ctx.work, measure_rss=True
    )
    completed = _completed(out)
    planned = _planned_trials()
    planned_text = f" of {planned} planned" if planned else ""
    if done.ok:
        table.add("default tune wall time", f"{done.seconds:.0f} s")
    elif done.timed_out:
        table.add("default tune wall time", f"did not finish within the {cap:.0f} s cap")
    else:
        table.add("default tune wall time", f"failed: {done.failure()}")
    table.add("trials completed", f"{completed}{planned_text} (both cells)")
    table.add("peak RSS", f"{done.peak_rss_mb:.0f} MB")
    if done.timed_out and completed:
        section.notes.append(
            f"{completed} trials in {done.seconds:.0f} s; Hyperband's later brackets train "
            "longer, so the whole default search takes more than "
            f"{done.seconds * (planned or completed) / completed / 60:.0f} min on this machine "
            "(trials x seconds per trial so far, a lower bound), plus retraining the two best."
        )
    section.data = {
        "seconds": done.seconds,
        "ok": done.ok,
        "timed_out": done.timed_out,
        "completed_trials": completed,
        "planned_trials": planned,
        "cap_s": cap,
    }
    return section
