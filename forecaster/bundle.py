"""The `Bundle`: everything that describes a trained or exported model, saved as JSON beside it.

Loading a bundle only parses JSON into dataclasses: it never runs code (no pickle anywhere).
`bundle.json` ends with a checksum of its own content, which holds the model file's SHA-256 too,
so a bundle edited or damaged after it was written is refused rather than giving wrong forecasts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecaster import __version__
from forecaster.errors import BundleError, DataError
from forecaster.files import write_text_atomic
from forecaster.intervals import Intervals
from forecaster.records import from_plain
from forecaster.scaling import MinMaxParams

SCHEMA_VERSION = 1
BUNDLE_FILE = "bundle.json"
CHECKSUM_KEY = "checksum"


def content_checksum(plain: dict[str, Any]) -> str:
    """`sha256:<hex>` of a bundle's JSON content, its checksum left out, in one canonical form.

    Keys sorted, no spaces, ASCII: the same text when writing and when reading back (JSON floats
    round-trip exactly). hashlib and json only, so the device checks it without TensorFlow.
    """
    content = {k: v for k, v in plain.items() if k != CHECKSUM_KEY}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class SeasonalInputs:
    """The decomposition reference's input channels and the smoothing it runs over a window.

    For grid rows r (steps since the training file's first row), two channels per target: the
    sum of its seasonal profiles at r and at r + horizon, each times the target's min-max
    `scale` (no offset: a profile is a difference from the level). The model subtracts the first
    from the target over the window, smooths the rest with Holt's recursions (`smoothing`:
    alpha, beta, phi per target; phi 0 without a trend) and adds the second, read at the window's
    last `horizon` rows, back. Training, evaluation and the device all compute them here.
    """

    seasons: tuple[tuple[int, ...], ...]  # per target: the seasons with a profile
    profiles: tuple[tuple[tuple[float, ...], ...], ...]  # per target, per season: by row % season
    smoothing: tuple[tuple[float, ...], ...]  # per target: (alpha, beta, phi)
    horizon: int

    @property
    def n_targets(self) -> int:
        """Targets described (two channels each)."""
        return len(self.smoothing)

    def sums(self, rows: np.ndarray) -> np.ndarray:
        """Each target's profile sum at grid rows `rows`: shape (*rows.shape, targets)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((*rows.shape, self.n_targets))
        for t, (seasons, profiles) in enumerate(zip(self.seasons, self.profiles, strict=True)):
            for season, profile in zip(seasons, profiles, strict=True):
                out[..., t] += np.asarray(profile)[np.mod(rows, season)]
        return out

    def channels(self, rows: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Float32 channels for grid rows: every target's S(r), then every target's S(r + H).

        `scale` holds the min-max scale of each target, in order.
        """
        rows = np.asarray(rows, dtype=np.int64)
        now = self.sums(rows) * scale
        ahead = self.sums(rows + self.horizon) * scale
        return np.concatenate([now, ahead], axis=-1).astype(np.float32)


@dataclass(frozen=True)
class DataSpec:
    """The data a model was trained on and how it was read."""

    source: (
        str  # the training file's name; its path stays in the run directory (training_file.json)
    )
    source_sha256: str
    time_col: str | None
    features: tuple[str, ...]
    targets: tuple[str, ...]
    step_seconds: float | None  # sampling step; None when the file had no timestamps
    freq: str  # the step as a person writes it, e.g. "1h"
    max_gap: int
    dedupe: str
    bad_rows: str
    split: tuple[float, float, float]
    train_start: str
    train_end: str
    season: int  # the first season: the MASE scale's, Holt-Winters' and the model's
    mase_scale: tuple[float, ...]  # in-sample seasonal-naive MAE per target, training part
    calendar: tuple[str, ...] = ()  # cycles appended as sin/cos input channels, in order
    seasons: tuple[int, ...] = ()  # every season of the data, first one first
    seasonal: SeasonalInputs | None = None  # the decomposition reference's channels, last
    lags: tuple[int, ...] = ()  # seasons fed as lag channels after the sensors (data.lags)

    def grid_rows(self, times_ns: np.ndarray, train_start: str | None = None) -> np.ndarray:
        """Timestamps (ns since the epoch) as grid rows: steps since the training file's first
        (or, for a series of a fleet, since its own `train_start`).

        Raises DataError for a model trained on a file without timestamps.
        """
        if self.time_col is None or not self.step_seconds:
            raise DataError(
                "the model was trained on a file without timestamps, so rows of another file "
                "cannot be placed on its time grid"
            )
        start = np.datetime64(train_start or self.train_start, "ns").astype(np.int64)
        step = round(self.step_seconds * 1e9)
        offsets = np.asarray(times_ns, dtype=np.int64) - start
        return (offsets + step // 2) // step  # to the nearest step, in integers


@dataclass(frozen=True)
class ModelSpec:
    """Architecture, window and horizon."""

    cell: str
    units: int
    layers: int
    dropout: float
    bidirectional: bool
    learning_rate: float
    clipnorm: float
    window: int
    horizon: int
    params: int
    residual: str = "none"
    normalize: str = "none"
    season: int = 1
    loss: str = "mse"  # bundles written before the option existed were trained on MSE


@dataclass(frozen=True)
class TrainingSpec:
    """How training was run and how it went."""

    epochs: int
    batch_size: int
    patience: int
    seed: int
    deterministic: bool
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    seconds: float
    seconds_per_epoch: float
    interrupted: bool
    time_limit: float | None = None  # seconds; None when training had no time limit
    windows_per_epoch: int | None = None  # windows sampled per epoch; None: every window
    initial_weights: str | None = None  # the weights training continued from, if any
    # Per forecast step, per target: the share of the network's correction to the reference kept
    # after training, fitted on the validation part (forecaster.model.shrink); empty without a
    # reference.
    shrinkage: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class ExportSpec:
    """The exported LiteRT file and its quantization."""

    file: str
    sha256: str
    size_bytes: int
    quantization: str
    batch: int | None  # fixed batch size of the model's input, or None when resizable
    input_scale: float | None = None
    input_zero_point: int | None = None
    output_scale: float | None = None
    output_zero_point: int | None = None
    recipe: str = ""  # how the file was made: twin, converter or quantizer, recipe
    runtime: str = "litert"  # litert, or micro: TensorFlow Lite Micro, batch 1
    arena_bytes: int | None = None  # micro: the tensor arena TFLite Micro measured (RAM)


@dataclass(frozen=True)
class SeriesSpec:
    """One series of a fleet: its id, its own scaler and where its training part lies."""

    id: str
    scaler: MinMaxParams  # fitted on this series' training part only
    train_start: str  # first training row's timestamp: grid row 0 of this series
    train_end: str
    mase_scale: tuple[float, ...]  # in-sample seasonal-naive MAE per target, training part
    rows: int  # rows on this series' grid when it was trained on
    intervals: Intervals | None = None  # this series' conformal half-widths, original units
    # The decomposition reference's channels from this series' own seasonal profiles (its grid
    # row 0 is `train_start`); the smoothing in them is the fleet's, built into the model.
    seasonal: SeasonalInputs | None = None


@dataclass(frozen=True)
class FleetSpec:
    """A global model's series: one model, many series, each scaled on its own training part.

    `predict` reads the id column, looks each id up here and refuses an id it does not know.
    """

    id_col: str
    series: tuple[SeriesSpec, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (id, why) of series left out of training
    # The model reads each window's series as one-hot channels (in the order of `series`) right
    # after the sensors and their lags.
    id_inputs: bool = False

    @property
    def ids(self) -> tuple[str, ...]:
        """The series ids, in training order."""
        return tuple(s.id for s in self.series)

    def member(self, series_id: str) -> SeriesSpec:
        """The spec of one series; DataError naming it when the model was not trained on it."""
        for spec in self.series:
            if spec.id == series_id:
                return spec
        known = ", ".join(self.ids[:5]) + (", ..." if len(self.series) > 5 else "")
        raise DataError(
            f"series '{series_id}' ({self.id_col}) was not in the data this model was trained "
            f"on ({len(self.series)} series: {known}); its scaler is unknown, so train a model "
            f"that includes it or leave its rows out"
        )


@dataclass(frozen=True)
class Bundle:
    """A trained model's full description; `bundle.json` in a run or export directory."""

    data: DataSpec
    scaler: MinMaxParams
    model: ModelSpec
    training: TrainingSpec | None = None
    baselines: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    export: ExportSpec | None = None
    intervals: Intervals | None = None  # conformal half-widths of this bundle's own model
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    fleet: FleetSpec | None = None  # a global model over many series, each with its own scaler
    forecaster_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        """The bundle as indented JSON, ending with the checksum of its content."""
        # Through JSON and back first, so the checksum sees what a reader will parse (string
        # keys, lists for tuples).
        plain = json.loads(json.dumps(dataclasses.asdict(self)))
        plain[CHECKSUM_KEY] = content_checksum(plain)
        return json.dumps(plain, indent=2, sort_keys=False) + "\n"

    def save(self, directory: Path) -> Path:
        """Write `bundle.json` into `directory` atomically."""
        path = directory / BUNDLE_FILE
        write_text_atomic(path, self.to_json())
        return path

    def replace(self, **changes: Any) -> Bundle:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def load(cls, directory: Path) -> Bundle:
        """Read and validate `bundle.json` from a run or export directory, and its checksum.

        An exported bundle without a checksum is refused; a run directory written before
        bundles had one is read as it is.
        """
        if not directory.exists():
            raise BundleError(
                f"{directory} does not exist; check the path (pass the directory written by "
                "`forecaster train` or `forecaster export`)"
            )
        path = directory / BUNDLE_FILE if directory.is_dir() else directory
        if not path.exists():
            raise BundleError(
                f"{directory} is not a forecaster run or bundle: {BUNDLE_FILE} is missing; pass "
                "the directory written by `forecaster train` or `forecaster export`"
            )
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(
                f"{path} is corrupt ({exc}); retrain or re-export to recreate it"
            ) from None
        if not isinstance(raw, dict):
            raise BundleError(f"{path} is corrupt (not a JSON object); re-export to recreate it")
        version = raw.get("schema_version")
        if not isinstance(version, int):
            raise BundleError(f"{path} has no schema_version; it was not written by forecaster")
        if version > SCHEMA_VERSION:
            raise BundleError(
                f"{path} has schema version {version}, newer than this forecaster "
                f"({__version__}, schema {SCHEMA_VERSION}); upgrade forecaster to read it"
            )
        try:
            bundle = from_plain(cls, raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(
                f"{path} is corrupt or incomplete ({exc}); retrain or re-export to recreate it"
            ) from None
        fix = (
            "re-export it (forecaster export RUN_DIR --overwrite) or copy the bundle again"
            if bundle.export is not None
            else "retrain the run to recreate it"
        )
        checksum = raw.get(CHECKSUM_KEY)
        if checksum is None and bundle.export is not None:
            raise BundleError(f"{path} has no checksum, so its content cannot be trusted; {fix}")
        if checksum is not None and checksum != content_checksum(raw):
            raise BundleError(
                f"{path} was changed after forecaster wrote it (its content does not match its "
                f"checksum); {fix}"
            )
        return bundle
