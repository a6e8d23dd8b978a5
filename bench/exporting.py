"""5. Export: file size and accuracy per quantization mode, with `forecaster export` itself.

`export(run, quantize="all")` converts every mode in a child process, runs each file in the
same LiteRT Predictor the device uses on the test windows, compares with the Keras model and
with the truth, and ships the smallest mode within the 2% accuracy gate. The bundles it writes
are the ones the streaming section predicts with.
"""

from __future__ import annotations

import time

from bench import fixtures
from bench.fixtures import Context
from bench.results import Section, Table, Target
from forecaster.records import to_plain

GATE = 0.02  # forecaster export's default --max-accuracy-loss


def run(ctx: Context) -> Section:
    """Export each cell's run with every mode and tabulate what export measured."""
    from forecaster.errors import ExportError
    from forecaster.export.ship import export

    table = Table(
        [
            "model",
            "mode",
            "bytes",
            "of float32",
            "max |diff| vs Keras (original units)",
            "max |diff| (scaled units)",
            "MAE vs truth",
            "MAE vs Keras MAE",
            "2% gate",
            "shipped",
        ],
        title="Test windows of the synthetic series (target `temp`, original units)",
    )
    failures: list[str] = []
    shipped: dict[str, str] = {}  # cell -> what ships, and which modes the gate refused
    data: dict[str, object] = {}
    seconds: dict[str, float] = {}
    for cell in ctx.settings.export_cells:
        run_dir = fixtures.ensure_run(ctx, cell)
        ctx.log(f"forecaster export {cell} --quantize all")
        started = time.perf_counter()
        try:
            outcome = export(
                run_dir, quantize="all", out=fixtures.bundle_dir(ctx, cell), overwrite=True
            )
        except ExportError as exc:
            failures.append(f"{cell}: {exc}")
            table.add(f"{cell.upper()}(64)", "all", None, None, None, None, None, None, "no", "")
            continue
        seconds[cell] = time.perf_counter() - started
        scaler = outcome.bundle.scaler
        scale = scaler.scale[scaler.columns.index(fixtures.TARGET)]
        label = f"{cell.upper()}({fixtures.UNITS})"
        table.add(label, "Keras", None, None, 0.0, 0.0, outcome.keras_mae, "", "", "")
        for r in outcome.results:
            if r.error:
                failures.append(f"{cell} {r.mode}: {r.error}")
                table.add(label, r.mode, None, None, None, None, None, "failed", "no", "")
                continue
            table.add(
                label,
                r.mode,
                r.size_bytes,
                f"{r.ratio_to_float32:.0%}" if r.ratio_to_float32 else "",
                r.max_abs_vs_keras,
                r.max_abs_vs_keras * scale,
                r.mae,
                f"{r.mae_change:+.2%}",
                "pass" if r.passed else "**refused**",
                "shipped" if r.mode == outcome.shipped else "",
            )
        refused = [
            f"{r.mode} refused: MAE {r.mae_change:+.2%}"
            for r in outcome.results
            if not r.error and not r.passed
        ]
        shipped[cell] = f"{cell} {outcome.shipped} ships" + (
            f" ({'; '.join(refused)})" if refused else ""
        )
        data[cell] = {
            "shipped": outcome.shipped,
            "reason": outcome.reason,
            "keras_mae": outcome.keras_mae,
            "modes": to_plain(outcome.results),
            "seconds": seconds[cell],
        }
    section = Section("export", "", tables=[table])
    section.targets = [
        Target(
            "every cell ships a file within the accuracy gate",
            f"test MAE at most {GATE:.0%} worse than Keras; a mode beyond it is refused",
            "; ".join([*shipped.values(), *failures]),
            not failures and len(shipped) == len(ctx.settings.export_cells),
        )
    ]
    section.notes = [
        "int8 rounds the recurrent state and every gate to 8 bits (per-tensor scales: "
        "per-channel weights make the converter fail) at each of the window's steps, and the "
        "rounding compounds through the loop; where that costs more than the gate allows, "
        "the gate refuses int8 and the next smallest passing mode ships.",
        "Sizes are the files `forecaster export` writes (after its constant sharing); max |diff| "
        "is the largest difference from the Keras forecast over every test window and step.",
        "Export wall time (4 conversions in a child process + measuring each mode): "
        + ", ".join(f"{cell.upper()} {s:.0f} s" for cell, s in seconds.items())
        + ".",
    ]
    section.data = data
    return section
