"""The report of `forecaster run`, assembled from the files each stage wrote (never from memory).

So a resumed run reports exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from forecaster import WHEEL
from forecaster.bundle import Bundle
from forecaster.evaluation.metrics import first_step
from forecaster.evaluation.rolling import TIE, EvaluationSummary, verdict
from forecaster.export.gate import ExportRecord, worst_text
from forecaster.job.device_check import DeviceCheck
from forecaster.layout import (
    BUNDLE_DIR,
    COMPARISON_PNG,
    DATA_SUMMARY,
    DEVICE_CHECK,
    ERROR_BY_STEP_PNG,
    FORECAST_PNG,
    METRICS,
    SEARCH_DIR,
    WINNER_DIR,
)
from forecaster.records import read_record
from forecaster.report.document import Code, Heading, Image, Paragraph, Report, TableBlock
from forecaster.report.fleet import add_fleet_section
from forecaster.tune.comparison import DEVICE_ROWS, ROWS, Comparison, formatted
from forecaster.tune.config import format_duration
from forecaster.tune.space import format_hyperparameter

# The table's first row is the winner as Keras runs it; the shipped file's row follows it.
MODEL_ROW = "model (shipped cell, Keras)"


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _f(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def build_report(out: Path, state: dict[str, Any]) -> Report:
    """Every section of the run report, in reading order: the verdict first, details last."""
    search = out / SEARCH_DIR
    comparison = Comparison.read(search)
    bundle = Bundle.load(out / BUNDLE_DIR)
    export = ExportRecord.of(bundle)
    if bundle.fleet is not None:
        return _fleet_report(out, state, comparison, bundle, export)
    metrics = read_record(search / WINNER_DIR / METRICS, EvaluationSummary)
    source = Path(state["identity"]["file"]).name
    report = Report(f"forecaster run: {source}, target {', '.join(bundle.data.targets)}")
    _verdict(report, bundle, comparison, export, metrics)
    for name, caption in (
        (FORECAST_PNG, "Forecast vs actual at a few test origins"),
        (ERROR_BY_STEP_PNG, "Mean absolute error by horizon step"),
    ):
        if (search / WINNER_DIR / name).exists():
            report.add(Image(search / WINNER_DIR / name, caption))
    # A run over a fleet: the per-series spread, wins and worst series the training wrote.
    add_fleet_section(report, search / WINNER_DIR)
    _gru_vs_lstm(report, comparison, search)
    _baselines(report, bundle, export, metrics)
    check = read_record(out / DEVICE_CHECK, DeviceCheck)
    _intervals(report, bundle, export, metrics, check)
    _quantization(report, export)
    _device_check(report, check)
    _search(report, comparison)
    _data(report, _read(out / DATA_SUMMARY))
    _reproduce(report, out, state)
    return report


def _fleet_report(
    out: Path, state: dict[str, Any], comparison: Comparison, bundle: Bundle, export: ExportRecord
) -> Report:
    """A run over a fleet: its verdict and per-series spread first, then what every run shows."""
    from forecaster.evaluation.fleet import FleetEvaluation

    search = out / SEARCH_DIR
    fleet = FleetEvaluation.read(search / WINNER_DIR)
    source = Path(state["identity"]["file"]).name
    n = len(fleet.series)
    report = Report(
        f"forecaster run: {source}, {n} series, target {', '.join(bundle.data.targets)}"
    )
    shipped = export.shipped_result()
    best = fleet.best_baseline.pooled
    # The export measured the shipped file in each series' MASE units, pooled over every test
    # origin: the same yardstick as the baselines' pooled MASE.
    ratio = shipped.mae / best if best else math.inf
    report.add(
        Paragraph(
            f"One shipped {comparison.winner.upper()} forecasts {n} series "
            f"{bundle.model.horizon} steps ahead, each scaled by its own training range. Run by "
            f"LiteRT ({export.shipped}, {shipped.size_bytes:,} bytes) over every series' test "
            f"origins its MASE is {shipped.mae:.3f}; each series' best baseline pooled the same "
            f"way scores {best:.3f}. Verdict: {_fleet_verdict(ratio)}.",
            note=ratio >= 1.0 - TIE,
        )
    )
    add_fleet_section(report, search / WINNER_DIR)
    _gru_vs_lstm(report, comparison, search)
    report.add(
        Paragraph(
            "For a fleet the test MAE and RMSE above are the median over the series of each "
            "series' own (in its units), and test MASE the median of the per-series MASE.",
            note=True,
        )
    )
    check = read_record(out / DEVICE_CHECK, DeviceCheck)
    _quantization(report, export)
    report.add(
        Paragraph(
            "A fleet's modes are compared in MASE units (each series' errors divided by its "
            "own MASE scale), pooled over every series' test origins.",
            note=True,
        )
    )
    _device_check(report, check)
    _search(report, comparison)
    _fleet_data(report, _read(out / DATA_SUMMARY))
    _reproduce(report, out, state)
    return report


def _fleet_verdict(ratio: float) -> str:
    """The shipped file's pooled MASE against the series' own best baselines, pooled alike."""
    if ratio < 1.0 - TIE:
        return (
            f"the shipped model beats the baselines: its pooled MASE is {1 - ratio:.0%} lower "
            "than that of each series' best baseline"
        )
    if ratio <= 1.0 + TIE:
        return (
            f"the shipped model ties with each series' best baseline (pooled MASE ratio "
            f"{ratio:.2f}): it is no better than those baselines here"
        )
    return (
        f"WARNING: the shipped model does not beat each series' best baseline (pooled MASE "
        f"ratio {ratio:.2f}); ship the baselines or train longer / tune before relying on it"
    )


def _fleet_data(report: Report, summary: dict[str, Any]) -> None:
    report.add(Heading("Data"))
    report.add(
        TableBlock(
            ["", ""],
            [
                ["series", str(len(summary["series"]))],
                ["rows", f"{sum(s['rows'] for s in summary['series']):,}"],
                ["step", str(summary["step"])],
                ["series with gaps", str(sum(1 for s in summary["series"] if s["gaps"]))],
            ],
        )
    )
    for warning in summary.get("warnings", []):
        report.add(Paragraph(f"Warning: {warning}", note=True))


def _verdict(
    report: Report,
    bundle: Bundle,
    comparison: Comparison,
    export: ExportRecord,
    metrics: EvaluationSummary,
) -> None:
    """The answer in plain words and units: how far off the forecasts are, and against what."""
    targets = ", ".join(bundle.data.targets)
    horizon = bundle.model.horizon
    ahead = (
        f" ({format_duration(horizon * bundle.data.step_seconds)})"
        if bundle.data.step_seconds
        else ""
    )
    best = metrics.best_baseline
    baseline = metrics.scores[best]
    shipped = export.shipped_result()
    # The verdict is on the file that ships, run by LiteRT, not on the Keras model it came from.
    ratio = shipped.mase / float(baseline["mase"]) if float(baseline["mase"]) else math.inf
    report.add(
        Paragraph(
            f"The shipped {comparison.winner.upper()} forecasts {targets} {horizon} steps"
            f"{ahead} ahead. On the {metrics.origins} test origins it is off by "
            f"{shipped.mae:.4g} on average ({targets}'s own units); {metrics.label(best)}, "
            f"the best of {len(metrics.skill_mase)} baselines, is off by "
            f"{baseline['mae']:.4g}. Verdict: "
            f"{verdict(ratio, metrics.label(best), 'the shipped model')}.",
            note=ratio >= 1.0 - TIE,
        )
    )
    report.add(
        Paragraph(
            f"Ships as {export.shipped} ({shipped.size_bytes:,} bytes); run by LiteRT its MAE is "
            f"{shipped.mae_change:+.1%} relative to the Keras model's. MASE, used below, "
            f"divides an error by the training part's error of repeating the value "
            f"{metrics.season} step(s) back: below 1 beats that; 'model / baseline' below 1 "
            "means the model beats the baseline."
        )
    )


def _gru_vs_lstm(report: Report, comparison: Comparison, search: Path) -> None:
    cells = comparison.cells
    names = list(cells)
    report.add(Heading("GRU vs LSTM, measured on this data"))
    report.add(
        TableBlock(
            ["", *[n.upper() + (" (winner)" if n == comparison.winner else "") for n in names]],
            [
                [label, *[formatted(cells[n], key, spec) for n in names]]
                for label, key, spec in (*ROWS, *DEVICE_ROWS)
            ],
        )
    )
    report.add(Paragraph(comparison.reason))
    if (search / COMPARISON_PNG).exists():
        report.add(Image(search / COMPARISON_PNG, "GRU vs LSTM side by side"))


def _baselines(
    report: Report, bundle: Bundle, export: ExportRecord, metrics: EvaluationSummary
) -> None:
    seasons = ", ".join(str(s) for s in metrics.seasons or (metrics.season,))
    report.add(Heading("Against the baselines (test part, original units)"))
    report.add(
        Paragraph(
            f"{metrics.origins} rolling origins from {metrics.first_origin} to "
            f"{metrics.last_origin}, horizon {bundle.model.horizon}, seasons {seasons}; every "
            f"method on the same origins; MASE scaled by the in-sample seasonal naive of season "
            f"{metrics.season}."
        )
    )
    table = []
    for method, scores in metrics.scores.items():
        table.append(
            [
                MODEL_ROW if method == "model" else metrics.label(method),
                _f(scores["mae"], ".4g"),
                _f(scores["rmse"], ".4g"),
                _f(scores["smape"], ".2f"),
                _f(scores["mase"], ".3f"),
                _f(first_step(scores), ".3f"),
                "" if method == "model" else _f(metrics.skill_mase[method], ".2f"),
            ]
        )
        if method == "model":
            table.append(_shipped_row(export))
    report.add(
        TableBlock(
            ["method", "MAE", "RMSE", "sMAPE %", "MASE", "MASE 1-step", "model / baseline"],
            table,
            0,
        )
    )


# Coverage this far (in points) from nominal is reported as off.
COVERAGE_TOLERANCE = 0.03


def _intervals(
    report: Report,
    bundle: Bundle,
    export: ExportRecord,
    metrics: EvaluationSummary,
    check: DeviceCheck,
) -> None:
    """Nominal vs achieved coverage on the test part, widths and interval scores."""
    intervals = bundle.intervals
    if intervals is None or not metrics.intervals:
        return
    report.add(Heading("Prediction intervals (test part)"))
    adapting = (
        "`forecaster predict` recalibrates them by default from the file's own last "
        f"{check.adapt} errors per step (only errors of rows before each origin; in `last` "
        "mode, of the origins before the last one), which follows drift and changes of "
        "season: the 'adapting' row is the shipped file run that way over the whole input. "
        if check.adaptive_intervals
        else ""
    )
    report.add(
        Paragraph(
            f"Each interval is the forecast +- a half-width per horizon step: the conformal "
            f"quantile of that method's absolute errors on the {intervals.origins} validation "
            f"origins ({intervals.first_origin} to {intervals.last_origin}). The shipped "
            "file's come from its own LiteRT forecasts. Early stopping chose the epoch on the "
            "same origins, so the model's may be a little narrow: the coverage below, on the "
            f"test part, is the honest check. {adapting}Winkler score: the mean width plus "
            "2/(1 - level) times each miss's distance, in the target's units; lower is better."
        )
    )
    rows = []
    shipped_name = f"shipped model ({export.shipped}, LiteRT)"
    adapting_name = f"shipped model, adapting (last {check.adapt} errors)"
    methods = [(shipped_name, check.intervals)]
    if check.adaptive_intervals:
        methods.append((adapting_name, check.adaptive_intervals))
    methods += [
        (MODEL_ROW if m == "model" else metrics.label(m), scores)
        for m, scores in metrics.intervals.items()
    ]
    off: dict[str, list[str]] = {shipped_name: [], adapting_name: []}
    for name, scores in methods:
        for i, score in enumerate(scores):
            rows.append(
                [
                    name if i == 0 else "",
                    f"{score.name}%",
                    _f(score.coverage, ".1%"),
                    _f(score.width, ".4g"),
                    _f(score.winkler, ".4g"),
                ]
            )
            if name in off and abs(score.coverage - score.level) > COVERAGE_TOLERANCE:
                off[name].append(f"{score.name}% covers {score.coverage:.1%}")
    report.add(TableBlock(["method", "nominal", "covered", "mean width", "Winkler"], rows, 0))
    points = f"{COVERAGE_TOLERANCE * 100:.0f} points"
    if off[shipped_name]:
        fine = (
            f" The adapting intervals `predict` writes by default are within {points}."
            if check.adaptive_intervals and not off[adapting_name]
            else ""
        )
        report.add(
            Paragraph(
                f"The bundle's fixed intervals are more than {points} from nominal "
                f"({'; '.join(off[shipped_name])}): the model's errors on the test part differ "
                "from those on the validation part (a drift, a season the validation part "
                f"does not hold, or too few origins: {metrics.origins} test, "
                f"{intervals.origins} validation).{fine}",
                note=True,
            )
        )
    if off[adapting_name]:
        report.add(
            Paragraph(
                f"The adapting intervals are more than {points} from nominal "
                f"({'; '.join(off[adapting_name])}) over {metrics.origins} test origins: "
                "the errors' spread changes faster than the last "
                f"{check.adapt} errors follow, or the origins are too few to measure coverage "
                "that closely. A smaller `--adapt N` follows changes sooner, a larger one "
                "steadies the widths.",
                note=True,
            )
        )
    for note in intervals.notes(tuple(s.level for s in check.intervals)):
        report.add(Paragraph(f"Note: {note}.", note=True))


def _quantization(report: Report, export: ExportRecord) -> None:
    report.add(Heading("Quantization"))
    modes = export.modes
    shipped_row = next((i for i, m in enumerate(modes) if m.mode == export.shipped), None)
    headers = [
        "mode",
        "bytes",
        "of float32",
        "worst change vs Keras, of bound",
        "MAE",
        "MAE change",
    ]
    report.add(
        TableBlock(
            [*headers, "ms/window", "runs on", ""],
            [
                [
                    m.mode,
                    _f(m.size_bytes, ",d"),
                    _f(m.ratio_to_float32, ".0%"),
                    worst_text(m) or _f(m.max_abs_vs_keras, ".3g"),
                    _f(m.mae, ".4g"),
                    _f(m.mae_change, "+.2%"),
                    _f(m.latency_ms, ".3f"),
                    ", ".join(m.runs_on)
                    + (f" (arena {m.arena_bytes:,} B)" if m.arena_bytes is not None else ""),
                    m.error
                    or ("shipped" if m.mode == export.shipped else "ok" if m.passed else "refused"),
                ]
                for m in modes
            ],
            shipped_row,
        )
    )
    recipe = export.shipped_result().recipe
    report.add(
        Paragraph(
            f"Shipped {export.shipped}: {export.reason}."
            + (f" The file is the {recipe}." if recipe else "")
        )
    )


def _device_check(report: Report, check: DeviceCheck) -> None:
    report.add(Heading("On-device check"))
    report.add(
        Paragraph(
            f"The shipped bundle run by `forecaster predict --mode rolling` (LiteRT, no "
            f"TensorFlow) on the input CSV, compared with the Keras model at the "
            f"{check.origins} test origins: largest difference {check.max_abs_vs_keras:.3g}, "
            f"mean {check.mean_abs_vs_keras:.3g}; interval bounds vs Keras' forecast +- the "
            f"bundle's half-widths: {check.max_abs_bounds_vs_keras:.3g} (tolerance "
            f"{check.tolerance:.3g}): " + ("passed." if check.passed else "FAILED."),
            note=not check.passed,
        )
    )


def _search(report: Report, comparison: Comparison) -> None:
    s = comparison.search
    report.add(Heading("Search"))
    report.add(
        Paragraph(
            f"Keras Tuner ({s['tuner']}, seed {s['seed']}), up to {s['max_epochs']} epochs per "
            f"trial, objective: validation loss on {s['validation_origins']} origins. Trials "
            f"finished: {', '.join(f'{k.upper()} {v}' for k, v in s['trials'].items())} in "
            f"{s['search_seconds']:.0f} s"
            + (" (time budget spent)." if s.get("budget_spent") else ".")
        )
    )
    cells = comparison.cells
    names = list(cells)
    hp_keys = sorted({k for c in cells.values() for k in c.hyperparameters})
    report.add(
        TableBlock(
            ["best hyperparameters", *[n.upper() for n in names]],
            [
                [k, *[format_hyperparameter(cells[n].hyperparameters.get(k, "-")) for n in names]]
                for k in hp_keys
            ],
        )
    )


def _data(report: Report, summary: dict[str, Any]) -> None:
    report.add(Heading("Data"))
    report.add(TableBlock(["", ""], [[k, str(v)] for k, v in summary["overview"].items()]))
    report.add(
        TableBlock(
            ["column", "role", "min", "max", "mean", "NaN in file"],
            [
                [c["column"], c["role"], c["min"], c["max"], c["mean"], str(c["NaN in file"])]
                for c in summary["columns"]
            ],
        )
    )
    if summary.get("seasons"):
        report.add(
            TableBlock(
                ["season", "kept", "why"],
                [[s["season"], s["kept"], s["why"]] for s in summary["seasons"]],
            )
        )
    for warning in summary.get("warnings", []):
        report.add(Paragraph(f"Warning: {warning}", note=True))


def _reproduce(report: Report, out: Path, state: dict[str, Any]) -> None:
    report.add(Heading("Reproduce and deploy"))
    report.add(Code(state.get("command") or "forecaster run ..."))
    report.add(
        Code(
            f"make wheel    # in the forecaster checkout: dist/{WHEEL}\n"
            f"# copy dist/{WHEEL} and {out / BUNDLE_DIR}/ to the device; there (no TensorFlow):\n"
            f"pip install {WHEEL}\n"
            f"forecaster predict {BUNDLE_DIR}/ sensor-log.csv --out forecasts.csv"
        )
    )


def _shipped_row(export: ExportRecord) -> list[str]:
    """The exported model as LiteRT runs it, on the test windows, beside the Keras model."""
    shipped = export.shipped_result()
    return [
        f"shipped model ({shipped.mode}, LiteRT)",
        _f(shipped.mae, ".4g"),
        _f(shipped.rmse, ".4g"),
        "",
        _f(shipped.mase, ".3f"),
        _f(shipped.mase_1step, ".3f"),
        "",
    ]
