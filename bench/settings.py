"""The sizes of a quick and a full benchmark run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """Every knob that differs between `python -m bench --quick` and the full run."""

    name: str
    budget_s: float  # the whole run should finish well inside this
    # 1. startup
    help_repeats: int
    import_repeats: int
    tf_import_repeats: int
    # 2. training: the same windows for every model
    train_windows: int
    speed_steps: int  # timed training steps per variant, variants taking turns step by step
    speed_variants: tuple[str, ...]
    # (intra-op, inter-op) threads, one child process each; (0, 0) is TensorFlow's own choice
    thread_configs: tuple[tuple[int, int], ...]
    converge_epochs: int
    converge_patience: int
    # 3. data pipeline
    input_repeats: int
    # 4. inference
    infer_batches: tuple[int, ...]
    infer_repeats: int
    infer_block_s: float
    # 5. export
    export_cells: tuple[str, ...]
    # 6. streaming predict
    stream_mb: tuple[float, float]
    stream_chunk_compare: int  # also stream the smaller file with this --chunk-rows (0: no)
    # 7. fleet predict: series x rows each in one long file, against one series of as many rows
    fleet_series: int
    fleet_rows: int
    fleet_modes: tuple[str, ...]
    fleet_repeats: int  # runs of each file per mode, taking turns; the best counts


ALL_VARIANTS = (
    "gru",
    "lstm",
    "gru_reset_before",
    "gru_unroll",
    "gru_jit",
    "lstm_jit",
    "gru_batch256",
    "lstm_batch256",
)

FULL = Settings(
    name="full",
    budget_s=20 * 60,
    help_repeats=10,
    import_repeats=5,
    tf_import_repeats=3,
    train_windows=20_000,
    speed_steps=200,
    speed_variants=ALL_VARIANTS,
    thread_configs=((0, 0), (1, 1), (2, 1)),
    converge_epochs=8,
    converge_patience=2,
    input_repeats=2,
    infer_batches=(1, 64, 512, 4096),
    infer_repeats=5,
    infer_block_s=0.25,
    export_cells=("gru", "lstm"),
    stream_mb=(8.0, 32.0),
    stream_chunk_compare=100_000,
    fleet_series=1000,
    fleet_rows=2000,
    fleet_modes=("last", "rolling"),
    fleet_repeats=1,
)

QUICK = Settings(
    name="quick",
    budget_s=3 * 60,
    help_repeats=3,
    import_repeats=2,
    tf_import_repeats=1,
    train_windows=3_000,
    speed_steps=30,
    speed_variants=("gru", "lstm"),
    thread_configs=(),
    converge_epochs=1,
    converge_patience=1,
    input_repeats=1,
    infer_batches=(1, 512, 4096),
    infer_repeats=2,
    infer_block_s=0.05,
    export_cells=("gru",),
    stream_mb=(2.0, 6.0),
    stream_chunk_compare=0,
    fleet_series=100,
    fleet_rows=500,
    fleet_modes=("last", "rolling"),
    fleet_repeats=3,
)


def settings_for(name: str) -> Settings:
    """`quick` or `full`."""
    return QUICK if name == "quick" else FULL
