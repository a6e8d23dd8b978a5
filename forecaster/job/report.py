"""The report of `forecaster run`, assembled from the files each stage wrote (never from memory).

So a resumed run reports exactly what an uninterrupted one would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forecaster import WHEEL
from forecaster.bundle import Bundle
from forecaster.evaluation.metrics import first_step
from forecaster.evaluation.rolling import EvaluationSummary
from forecaster.export.gate import ExportRecord
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
from forecaster.tune.comparison import DEVICE_ROWS, ROWS, Comparison, formatted
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
    """Every section of the run report, in reading order."""
    search = out / SEARCH_DIR
    summary = _read(out / DATA_SUMMARY)
    comparison = Comparison.read(search)
    bundle = Bundle.load(out / BUNDLE_DIR)
    export = ExportRecord.of(bundle)
    metrics = read_record(search / WINNER_DIR / METRICS, EvaluationSummary)
    check = read_record(out / DEVICE_CHECK, DeviceCheck)
    winner = comparison.winner
    source = Path(state["identity"]["file"]).name
    report = Report(f"forecaster run: {source}, target {', '.join(bundle.data.targets)}")

    best = metrics.best_baseline
    ratio = metrics.skill_mase[best]
    verdict = metrics.verdict
    model_mase, best_mase = metrics.scores["model"]["mase"], metrics.scores[best]["mase"]
    report.add(
        Paragraph(
            f"Shipped: {winner.upper()}, exported as {export.shipped} "
            f"({export.shipped_result().size_bytes:,} bytes). Test MASE {model_mase:.3f} vs "
            f"{metrics.label(best)} {best_mase:.3f} (ratio {ratio:.2f}): {verdict}.",
            note=not metrics.beats_best_baseline,
        )
    )

    report.add(Heading("Data"))
    overview = summary["overview"]
    report.add(TableBlock(["", ""], [[k, str(v)] for k, v in overview.items()]))
    report.add(
        TableBlock(
            ["column", "role", "min", "max", "mean", "NaN in file"],
            [
                [c["column"], c["role"], c["min"], c["max"], c["mean"], str(c["NaN in file"])]
                for c in summary["columns"]
            ],
        )
    )
    for warning in summary.get("warnings", []):
        report.add(Paragraph(f"Warning: {warning}", note=True))

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

    report.add(Heading("GRU vs LSTM, measured on this data"))
    report.add(
        TableBlock(
            ["", *[n.upper() + (" (winner)" if n == winner else "") for n in names]],
            [
                [label, *[formatted(cells[n], key, spec) for n in names]]
                for label, key, spec in (*ROWS, *DEVICE_ROWS)
            ],
        )
    )
    report.add(Paragraph(comparison.reason))
    if (search / COMPARISON_PNG).exists():
        report.add(Image(search / COMPARISON_PNG, "GRU vs LSTM side by side"))

    report.add(Heading("Against the baselines (test part, original units)"))
    report.add(
        Paragraph(
            f"{metrics.origins} rolling origins from {metrics.first_origin} to "
            f"{metrics.last_origin}, horizon {bundle.model.horizon}, seasons "
            f"{', '.join(str(s) for s in metrics.seasons or (metrics.season,))}; every method "
            f"on the same origins; MASE scaled by the in-sample seasonal naive of season "
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
            ["method", "MAE", "RMSE", "sMAPE %", "MASE", "MASE 1-step", "model / it"], table, 0
        )
    )
    for name, caption in (
        (FORECAST_PNG, "Forecast vs actual at a few test origins"),
        (ERROR_BY_STEP_PNG, "MAE by horizon step"),
    ):
        if (search / WINNER_DIR / name).exists():
            report.add(Image(search / WINNER_DIR / name, caption))

    report.add(Heading("Quantization"))
    modes = export.modes
    shipped_row = next((i for i, m in enumerate(modes) if m.mode == export.shipped), None)
    report.add(
        TableBlock(
            [
                "mode",
                "bytes",
                "of float32",
                "max abs diff vs Keras",
                "MAE",
                "MAE change",
                "ms/window",
                "",
            ],
            [
                [
                    m.mode,
                    _f(m.size_bytes, ",d"),
                    _f(m.ratio_to_float32, ".0%"),
                    _f(m.max_abs_vs_keras, ".3g"),
                    _f(m.mae, ".4g"),
                    _f(m.mae_change, "+.2%"),
                    _f(m.latency_ms, ".3f"),
                    m.error
                    or ("shipped" if m.mode == export.shipped else "ok" if m.passed else "refused"),
                ]
                for m in modes
            ],
            shipped_row,
        )
    )
    report.add(Paragraph(f"Shipped {export.shipped}: {export.reason}."))

    report.add(Heading("On-device check"))
    report.add(
        Paragraph(
            f"The shipped bundle run by `forecaster predict --mode rolling` (LiteRT, no "
            f"TensorFlow) on the input CSV, compared with the Keras model at the "
            f"{check.origins} test origins: largest difference {check.max_abs_vs_keras:.3g}, "
            f"mean {check.mean_abs_vs_keras:.3g} (tolerance {check.tolerance:.3g}): "
            + ("passed." if check.passed else "FAILED."),
            note=not check.passed,
        )
    )

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
    return report


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
