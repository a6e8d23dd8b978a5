"""A bundle summarised for `forecaster inspect`: model, data, file, tensors, ops, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecaster.bundle import Bundle, ExportSpec
from forecaster.data.lags import history_rows
from forecaster.device.predictor import Predictor
from forecaster.intervals import level_name


@dataclass(frozen=True)
class BundleSummary:
    """An exported bundle and what its LiteRT interpreter reports about the model file."""

    directory: Path
    bundle: Bundle
    export: ExportSpec
    input: dict[str, Any]  # name, shape, dtype, quantization (scale and zero point, or None)
    output: dict[str, Any]
    resizable_batch: bool
    ops: dict[str, int]  # operator -> count in the main graph

    def rows(self) -> dict[str, str]:
        """Label -> text, in the order to show them; the test MASE only when it was measured."""
        b, export = self.bundle, self.export
        rows = {
            "model": f"{b.model.cell.upper()} {b.model.units} units x {b.model.layers} layer(s), "
            f"{b.model.params:,} parameters",
            "window -> horizon": f"{b.model.window} -> {b.model.horizon} steps of {b.data.freq}",
            "inputs": ", ".join(b.data.features) + _lags_text(b),
            "targets": ", ".join(b.data.targets),
            "trained on": f"{Path(b.data.source).name}, {b.data.train_start} .. {b.data.train_end}",
            **_fleet_row(b),
            "quantization": export.quantization + (f" ({export.recipe})" if export.recipe else ""),
            "runtime": export.runtime
            + (
                f", tensor arena {export.arena_bytes:,} bytes"
                if export.arena_bytes is not None
                else ""
            ),
            "file": f"{export.file}, {export.size_bytes:,} bytes, sha256 {export.sha256[:16]}...",
            "input tensor": _tensor_text(self.input),
            "output tensor": _tensor_text(self.output),
            "resizable batch": "yes" if self.resizable_batch else "no",
            "ops (main graph)": ", ".join(f"{k} x{v}" for k, v in self.ops.items()),
            "versions": ", ".join(f"{k} {v}" for k, v in b.versions.items()),
            "schema": f"{b.schema_version} (forecaster {b.forecaster_version})",
        }
        if b.intervals is not None:
            rows["intervals"] = (
                f"levels {', '.join(level_name(v) for v in b.intervals.levels)}%, from "
                f"{b.intervals.source} ({b.intervals.origins} origins, "
                f"{b.intervals.first_origin} .. {b.intervals.last_origin})"
            )
        test = b.metrics.get("test", {})
        if test:
            scores = test["scores"]
            rows["test MASE"] = ", ".join(f"{k} {v['mase']:.3f}" for k, v in scores.items())
        return rows


def summarize_bundle(directory: Path) -> BundleSummary:
    """Load the bundle in `directory` into a LiteRT interpreter and summarise it."""
    predictor = Predictor.load(directory)
    bundle = predictor.bundle
    assert bundle.export is not None  # Predictor.load refuses bundles without an export
    io = predictor.describe()
    return BundleSummary(
        directory=directory,
        bundle=bundle,
        export=bundle.export,
        input=io["input"],
        output=io["output"],
        resizable_batch=io["resizable_batch"],
        ops=predictor.ops(),
    )


def _tensor_text(tensor: dict[str, Any]) -> str:
    quant = tensor["quantization"]
    text = f"{tensor['dtype']} {tensor['shape']}"
    return text + (
        f", scale {quant['scale']:.4g}, zero point {quant['zero_point']}" if quant else ""
    )


def _fleet_row(bundle: Bundle) -> dict[str, str]:
    """The series of a global model and its id column; nothing for a one-series model."""
    fleet = bundle.fleet
    if fleet is None:
        return {}
    ids = ", ".join(fleet.ids[:3]) + (", ..." if len(fleet.series) > 3 else "")
    return {
        "series": f"{len(fleet.series):,} by column '{fleet.id_col}' ({ids}), each scaled alone"
    }


def _lags_text(bundle: Bundle) -> str:
    """The seasonal lags and the rows a forecast reads for them, or nothing without lags."""
    lags = bundle.data.lags
    if not lags:
        return ""
    rows = history_rows(bundle.model.window, bundle.model.horizon, lags)
    seasons = ", ".join(map(str, lags))
    return f"; the values {seasons} steps before each forecast step (a forecast reads {rows} rows)"
