"""5. Export: file size and accuracy per quantization mode, with `forecaster export` itself.

`export(run, quantize="all")` converts every mode in a child process, runs each file in the
same LiteRT Predictor the device uses on the test windows, compares with the Keras model and
with the truth, and ships the smallest mode within the gate (MAE at most 2% worse, no forecast
moved by more than Keras' test MAE). The bundles it writes are the ones the streaming section
predicts with. `export(run, runtime="micro")` then writes the TensorFlow Lite Micro file of each
cell, run in TFLite Micro's own interpreter, with its tensor arena.
"""

from __future__ import annotations

import time

from bench import fixtures
from bench.fixtures import Context
from bench.results import Section, Table, Target
from forecaster.export.gate import worst_text
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
            "worst origin vs Keras (original units), of bound",
            "max |diff| (scaled units)",
            "MAE vs truth",
            "MAE vs Keras MAE",
            "gate",
            "shipped",
            "runs on",
            "recipe",
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
            table.add(
                f"{cell.upper()}(64)", "all", None, None, None, None, None, None, "no", "", "", ""
            )
            continue
        seconds[cell] = time.perf_counter() - started
        scaler = outcome.bundle.scaler
        scale = scaler.scale[scaler.columns.index(fixtures.TARGET)]
        label = f"{cell.upper()}({fixtures.UNITS})"
        table.add(label, "Keras", None, None, "0", 0.0, outcome.keras_mae, "", "", "", "", "")
        ctx.log(f"forecaster export {cell} --runtime micro")
        micro_started = time.perf_counter()
        try:
            micro = export(
                run_dir,
                runtime="micro",
                out=ctx.work / "bundles" / f"{cell}-micro",
                overwrite=True,
                force=True,
            )
            micro_results = micro.results
            seconds[f"{cell} micro"] = time.perf_counter() - micro_started
        except ExportError as exc:
            failures.append(f"{cell} micro: {exc}")
            micro_results = []
        float_size = next(r.size_bytes for r in outcome.results if r.mode == "float32")
        for r in [*outcome.results, *micro_results]:
            if r.error:
                failures.append(f"{cell} {r.mode}: {r.error}")
                table.add(label, r.mode, None, None, None, None, None, "failed", "no", "", "", "")
                continue
            runs_on = ", ".join(r.runs_on)
            if r.arena_bytes is not None:
                runs_on += f" (arena {r.arena_bytes:,} B)"
            table.add(
                label,
                r.mode,
                r.size_bytes,
                f"{r.size_bytes / float_size:.0%}",
                worst_text(r),
                r.max_abs_vs_keras * scale,
                r.mae,
                f"{r.mae_change:+.2%}",
                "pass" if r.passed else "**refused**",
                "shipped" if r.mode == outcome.shipped else "",
                runs_on,
                r.recipe,
            )
        if micro_results and not micro_results[0].passed:
            failures.append(f"{cell} micro refused by the gate")
        refused = [
            f"{r.mode} refused: MAE {r.mae_change:+.2%}, worst origin {worst_text(r)}"
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
            "micro": to_plain(micro_results),
            "seconds": seconds[cell],
        }
    section = Section("export", "", tables=[table])
    integer = {
        cell: next((m for m in d["modes"] if m["mode"] == "int16x8"), None)  # type: ignore[index]
        for cell, d in data.items()
    }
    section.targets = [
        Target(
            "every cell ships a file within the accuracy gate",
            f"test MAE at most {GATE:.0%} worse than Keras and no forecast moved by more than "
            "Keras' test MAE; a mode beyond either is refused",
            "; ".join([*shipped.values(), *failures]),
            not failures and len(shipped) == len(ctx.settings.export_cells),
        ),
        Target(
            "a full-integer mode passes the gate on every cell",
            "int16x8 (int8 weights, int16 activations) within the gate",
            "; ".join(
                f"{cell} int16x8 "
                + (
                    f"{'passes' if m['passed'] else 'refused'}, MAE {m['mae_change']:+.2%}, "
                    f"{m['size_bytes']:,} bytes"
                    if m
                    else "missing"
                )
                for cell, m in integer.items()
            ),
            bool(integer) and all(m and m["passed"] for m in integer.values()),
        ),
    ]
    lstm = integer.get("lstm")
    if lstm is not None:
        float_bytes = next(
            m["size_bytes"]
            for m in data["lstm"]["modes"]  # type: ignore[index]
            if m["mode"] == "float32"
        )
        section.targets.append(
            Target(
                "an LSTM's full-integer file is no larger than its float32 file",
                "int16x8 within the gate and at most the float32 loop file's size (stretch: half)",
                f"lstm int16x8 {lstm['size_bytes']:,} bytes, "
                f"{lstm['size_bytes'] / float_bytes:.0%} of float32 ({lstm['recipe'][:24]}...)",
                bool(lstm["passed"]) and lstm["size_bytes"] <= float_bytes,
            )
        )
    section.notes = [
        "int8 rounds the recurrent state and every gate to 8 bits (per-tensor scales: "
        "per-channel weights make the converter fail) at each of the window's steps, and the "
        "rounding compounds through the loop; where that costs more than the gate allows, "
        "the gate refuses int8 and the next smallest passing mode ships.",
        "A GRU's int16x8 and micro are the twin unrolled over the window and quantized by "
        "ai-edge-quantizer (int8 per-tensor weights, int16 activations): accurate, but every "
        "step has its own tensors and operators, so the file grows with the window; micro is "
        "the same at batch 1, run in TensorFlow Lite Micro's interpreter on 200 test windows "
        "(its arena is the RAM a microcontroller sets aside; flash is the file).",
        "An LSTM's int16x8 and micro are first one fused UNIDIRECTIONAL_SEQUENCE_LSTM op a "
        "layer (int8, int16 cell state) at batch 1, the ops around it int16: its weights are "
        "stored once; the unrolled file is made only when the gate refuses the fused one.",
        "Sizes are the files `forecaster export` writes (after its constant sharing); max |diff| "
        "is the largest difference from the Keras forecast over every test window and step.",
        "Export wall time (5 conversions in a child process + measuring each mode; micro "
        "apart): " + ", ".join(f"{cell.upper()} {s:.0f} s" for cell, s in seconds.items()) + ".",
    ]
    section.data = data
    return section
