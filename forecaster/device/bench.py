"""Measuring an exported bundle on the device: latency, throughput and memory, numpy only."""

from __future__ import annotations

import platform
import resource
import sys
import time
from typing import Any

import numpy as np

from forecaster.device.predictor import Predictor


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def bench_predictor(
    predictor: Predictor,
    *,
    batches: tuple[int, ...] = (1, 64, 512, 4096),
    seconds: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Latency percentiles at batch 1 and windows per second at each batch size.

    Inputs are random windows inside the training range; each size runs for about `seconds`.
    """
    rng = np.random.default_rng(seed)
    largest = max(batches)
    # Every input channel, calendar and seasonal ones included: the model's input width.
    x = rng.random((largest, predictor.window, predictor.channels), dtype=np.float32)
    rows: list[dict[str, Any]] = []
    for batch in batches:
        part = x[:batch]
        predictor.predict_scaled(part)  # warm up: allocation and resizing
        times: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(times) < 3:
            started = time.perf_counter()
            predictor.predict_scaled(part)
            times.append(time.perf_counter() - started)
        per_call = np.asarray(times)
        rows.append(
            {
                "batch": batch,
                "calls": len(times),
                "p50_ms": float(np.percentile(per_call, 50) * 1000),
                "p95_ms": float(np.percentile(per_call, 95) * 1000),
                "windows_per_s": float(batch / np.median(per_call)),
            }
        )
    export = predictor.bundle.export
    return {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "threads": predictor.num_threads,
        "quantization": export.quantization if export else None,
        "model_bytes": export.size_bytes if export else None,
        "results": rows,
        "peak_rss_mb": peak_rss_mb(),
    }
