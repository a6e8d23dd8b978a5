"""The search space: its hyperparameters, defaults from the data, TOML files and option syntax.

Nothing here imports Keras or Keras Tuner, so the command line can parse and check every option
before the heavy libraries load.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from forecaster.config import (
    CELLS,
    RESIDUALS,
    Cell,
    ModelConfig,
    Normalize,
    Residual,
    WindowConfig,
)
from forecaster.errors import ConfigError, UsageError

NORMALIZES: tuple[Normalize, ...] = ("none", "last", "mean")

# Keys of a search space (its TOML file and SearchSpace fields) and the hyperparameter each
# declares, in the order the tuner declares them. The order matters: random draws follow it, so
# two sub-searches that differ only in the cell see the same draws.
HYPERPARAMETERS = {
    "cells": "cell",
    "windows": "window",
    "units": "units",
    "layers": "layers",
    "dropout": "dropout",
    "learning_rate": "learning_rate",
    "residual": "residual",
    "normalize": "normalize",
}
SPACE_KEYS = tuple(HYPERPARAMETERS)


def format_hyperparameter(value: Any) -> str:
    """A hyperparameter's value as the tables and progress lines show it: floats to 3 digits."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SearchSpace:
    """What the tuner may choose from; ranges are inclusive (min, max) pairs.

    `windows` are input lengths in steps. `units` takes powers of two from min to max (min itself
    when it is not a power of two, then doubling). `learning_rate` is searched on a log scale,
    `dropout` in steps of 0.1 (or its min when min == max).
    """

    cells: tuple[Cell, ...] = CELLS
    windows: tuple[int, ...] = (48,)
    units: tuple[int, int] = (16, 64)
    layers: tuple[int, int] = (1, 2)
    dropout: tuple[float, float] = (0.0, 0.3)
    learning_rate: tuple[float, float] = (1e-4, 1e-2)
    residual: tuple[Residual, ...] = ("none",)
    normalize: tuple[Normalize, ...] = ("none",)

    def __post_init__(self) -> None:
        if not self.cells:
            raise UsageError("the search space has no cell; pass --cells gru,lstm")
        for cell in self.cells:
            if cell not in CELLS:
                raise UsageError(f"cells: unknown cell {cell!r}; choose from gru, lstm")
        if len(set(self.cells)) != len(self.cells):
            raise UsageError(f"cells: {', '.join(self.cells)} lists a cell twice")
        if not self.windows:
            raise UsageError("the search space has no window length; pass e.g. --windows 24,48")
        if any(w < 1 for w in self.windows):
            raise UsageError(f"windows: every window must be at least 1 step, got {self.windows}")
        _check_range("units", self.units, low=1)
        _check_range("layers", self.layers, low=1, high=4)
        _check_range("dropout", self.dropout, low=0.0, high=0.9)
        _check_range("learning_rate", self.learning_rate, low=1e-7, high=1.0)
        for name, values, allowed in (
            ("residual", self.residual, RESIDUALS),
            ("normalize", self.normalize, NORMALIZES),
        ):
            if not values:
                raise UsageError(f"{name}: the choice list is empty; pass e.g. none")
            bad = [v for v in values if v not in allowed]
            if bad:
                raise UsageError(
                    f"{name}: unknown choice {bad[0]!r}; choose from {', '.join(allowed)}"
                )

    @property
    def unit_choices(self) -> tuple[int, ...]:
        """The unit counts searched: min, then doubling up to max (max always included)."""
        low, high = self.units
        values = []
        value = low
        while value < high:
            values.append(value)
            value *= 2
        values.append(high)
        return tuple(values)

    def starting_point(self) -> dict[str, Any]:
        """`forecaster train`'s recipe moved into this space: the values a search tries first.

        Each default is kept when the space holds it; otherwise the nearest value is taken (the
        first choice for residual and normalize). The decomposition reference goes first when
        the space has it: a network that corrects the decomposition baseline starts at that
        baseline's accuracy, so a search cut short by its budget has still tried it.
        """
        model, window = ModelConfig(), WindowConfig().window

        def nearest(values: tuple[Any, ...], default: Any) -> Any:
            return min(values, key=lambda v: (abs(v - default), -v))

        def clamp(pair: tuple[Any, Any], default: Any) -> Any:
            return min(max(default, pair[0]), pair[1])

        def held(choices: tuple[Any, ...], default: Any) -> Any:
            return default if default in choices else choices[0]

        return {
            "window": nearest(self.windows, window),
            "units": nearest(self.unit_choices, model.units),
            "layers": clamp(self.layers, model.layers),
            "dropout": clamp(self.dropout, model.dropout),
            "learning_rate": clamp(self.learning_rate, model.learning_rate),
            "residual": held(
                self.residual,
                "decomposition" if "decomposition" in self.residual else model.residual,
            ),
            "normalize": held(self.normalize, model.normalize),
        }

    def check_against(self, *, horizon: int, season: int) -> None:
        """Refuse windows the data's horizon or season make meaningless."""
        short = [w for w in self.windows if w < horizon]
        if short:
            raise UsageError(
                f"windows: {', '.join(map(str, short))} shorter than the horizon ({horizon} "
                "steps); a window must see at least as many steps as it forecasts, e.g. "
                f"--windows horizon:1,2,4 or --windows {horizon},{2 * horizon}"
            )
        for anchor in SEASONAL_ANCHORS:
            if anchor not in self.residual:
                continue
            if season < 2:
                raise ConfigError(
                    f"residual={anchor} needs a season of 2 or more steps; pass --season or drop "
                    f"{anchor} from --residual"
                )
            need = shortest_window(anchor, horizon, season)
            short = [w for w in self.windows if w < need]
            if short:
                raise ConfigError(
                    f"residual={anchor} needs windows of at least {need} steps (season {season}, "
                    f"horizon {horizon}) but the space has {', '.join(map(str, short))}; drop "
                    f"{anchor} from --residual or the short windows"
                )

    def replace(self, **changes: Any) -> SearchSpace:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The space as plain JSON values, in declaration order."""
        return {key: list(getattr(self, key)) for key in SPACE_KEYS}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SearchSpace:
        """Read back `to_json`."""
        return cls(**{key: tuple(raw[key]) for key in SPACE_KEYS})


SEASONAL_ANCHORS: tuple[Residual, ...] = ("seasonal", "last_seasonal")


def shortest_window(residual: Residual, horizon: int, season: int) -> int:
    """The fewest input steps a window needs to take the `residual` reference."""
    if residual == "seasonal":
        return season  # every step's seasonal-naive value lies in the latest season
    if residual == "last_seasonal":
        # ... and so does the row as many seasons before the window's last row.
        return season * math.ceil(horizon / season) + 1
    if residual == "decomposition":
        return horizon  # each step's profile ahead is read from the window's last rows
    return 1


def _check_range(
    name: str, pair: tuple[float, float], *, low: float, high: float | None = None
) -> None:
    lo, hi = pair
    if lo > hi:
        raise UsageError(
            f"{name}: the minimum {lo:g} is above the maximum {hi:g}; pass MIN:MAX with MIN <= MAX"
        )
    if lo < low or (high is not None and hi > high):
        limits = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise UsageError(f"{name}: {lo:g}:{hi:g} is out of range; values must be {limits}")


def default_space(
    *,
    train_rows: int,
    longest_eval_rows: int,
    horizon: int,
    season: int,
    residual_supported: bool = False,
    normalize_supported: bool = False,
    decomposition_supported: bool = False,
) -> SearchSpace:
    """A search space scaled to the data.

    Windows: 1, 2 and 4 horizons, 1 and 2 seasons and a season plus the horizon, keeping those
    that leave at least three quarters of the training windows and fit the validation and test
    parts, and of those only the ones long enough for every seasonal anchor when any is. Units,
    layers: larger models only when there are enough training windows to fit them (fewer than
    1,000 windows: 8-16 units and one layer; fewer than 10,000: 16-64 and up to two; otherwise
    32-128 and up to three). Residual and normalize choices only when the model builder honours
    them; residuals are anchored on the latest level (last, and last_seasonal when the windows
    allow it), or on the decomposition baseline run over the window when
    `decomposition_supported` (timestamps, and a season with a profile).
    """
    candidates = {horizon, 2 * horizon, 4 * horizon}
    seasonal_need = max(shortest_window(a, horizon, season) for a in SEASONAL_ANCHORS)
    if season > 1:
        candidates |= {season, 2 * season, season * math.ceil(horizon / season) + horizon}
    limit = min(train_rows // 4, longest_eval_rows - horizon)
    windows = tuple(sorted(w for w in candidates if horizon <= w <= limit)) or (horizon,)
    # A window too short for the seasonal anchors sees no whole cycle and cannot take them, and
    # they beat the last-value anchor on the hourly samples (bench/quality.md).
    if season > 1:
        windows = tuple(w for w in windows if w >= seasonal_need) or windows
    windows_count = max(train_rows - max(windows) - horizon + 1, 0)
    if windows_count < 1_000:
        units, layers = (8, 16), (1, 1)
    elif windows_count < 10_000:
        units, layers = (16, 64), (1, 2)
    else:
        units, layers = (32, 128), (1, 3)
    residual: tuple[Residual, ...] = ("none",)
    if residual_supported:
        # The output is always anchored to the latest level, so an under-trained or unlucky
        # network still forecasts close to "naive". With `none` it is anchored to nothing or,
        # with normalize=mean, to the window mean; with `seasonal`, to values a season old. The
        # search chose each by validation loss (the mean over the horizon) and lost to the naive
        # forecast at one step: `none` on the water-flow sample, `seasonal` on water flow (0.051
        # vs 0.030) and Mauna Loa CO2 (0.628 vs 0.327). `last_seasonal` keeps the season's shape
        # on the latest level.
        fits = season > 1 and min(windows) >= shortest_window("last_seasonal", horizon, season)
        residual = ("last", "last_seasonal") if fits else ("last",)
        if decomposition_supported:
            residual = (*residual, "decomposition")
    normalize: tuple[Normalize, ...] = NORMALIZES if normalize_supported else ("none",)
    return SearchSpace(
        windows=windows,
        units=units,
        layers=layers,
        dropout=(0.0, 0.3),
        learning_rate=(1e-4, 1e-2),
        residual=residual,
        normalize=normalize,
    )


@dataclass(frozen=True)
class SpaceOverrides:
    """Parts of the search space the user set, from a TOML file and/or options; None = default.

    `windows` is kept as written ("24,48", "horizon:1,2,4", "season:1,2" or a list of steps)
    until the horizon and season are known.
    """

    cells: tuple[Cell, ...] | None = None
    windows: str | tuple[int, ...] | None = None
    units: tuple[int, int] | None = None
    layers: tuple[int, int] | None = None
    dropout: tuple[float, float] | None = None
    learning_rate: tuple[float, float] | None = None
    residual: tuple[Residual, ...] | None = None
    normalize: tuple[Normalize, ...] | None = None

    def __post_init__(self) -> None:
        # Check every range and choice now, before any data or TensorFlow is loaded.
        given = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None and f.name != "windows"
        }
        SearchSpace(**given)
        if isinstance(self.windows, tuple):
            SearchSpace(windows=self.windows)

    @classmethod
    def from_options(
        cls,
        *,
        cells: str | None = None,
        windows: str | None = None,
        units: str | None = None,
        layers: str | None = None,
        dropout: str | None = None,
        lr: str | None = None,
        residual: str | None = None,
        normalize: str | None = None,
    ) -> SpaceOverrides:
        """Overrides from command-line text: '--units 8:64', '--residual none,last', ..."""
        return cls(
            cells=canonical_cells(parse_choices(cells, "--cells", CELLS)) if cells else None,
            windows=windows,
            units=parse_range(units, "--units", int) if units else None,
            layers=parse_range(layers, "--layers", int) if layers else None,
            dropout=parse_range(dropout, "--dropout", float) if dropout else None,
            learning_rate=parse_range(lr, "--lr", float) if lr else None,
            residual=cast("tuple[Residual, ...]", parse_choices(residual, "--residual", RESIDUALS))
            if residual
            else None,
            normalize=cast(
                "tuple[Normalize, ...]", parse_choices(normalize, "--normalize", NORMALIZES)
            )
            if normalize
            else None,
        )

    def merged(self, other: SpaceOverrides) -> SpaceOverrides:
        """These overrides with `other`'s set fields on top (options over a file)."""
        changes = {
            f.name: getattr(other, f.name)
            for f in dataclasses.fields(other)
            if getattr(other, f.name) is not None
        }
        return dataclasses.replace(self, **changes)

    def apply(self, base: SearchSpace, *, horizon: int, season: int) -> SearchSpace:
        """`base` with these overrides, windows resolved against the horizon and season."""
        changes: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None and f.name != "windows"
        }
        if self.windows is not None:
            changes["windows"] = resolve_windows(self.windows, horizon=horizon, season=season)
        space = base.replace(**changes)
        # The default space offers seasonal residuals only when every window is long enough.
        if self.residual is None:
            fits = tuple(
                r
                for r in space.residual
                if season > 1 or r not in SEASONAL_ANCHORS
                if min(space.windows) >= shortest_window(r, horizon, season)
            )
            space = space.replace(residual=fits or ("last",))
        space.check_against(horizon=horizon, season=season)
        return space


def canonical_cells(cells: tuple[str, ...]) -> tuple[Cell, ...]:
    """Cells in a fixed order (gru, lstm): the same search whatever order they were given in."""
    return tuple(c for c in CELLS if c in cells)


def resolve_windows(spec: str | tuple[int, ...], *, horizon: int, season: int) -> tuple[int, ...]:
    """Window lengths in steps from '24,48', 'horizon:1,2,4' or 'season:1,2'."""
    if not isinstance(spec, str):
        return tuple(sorted(set(spec)))
    text = spec.strip()
    unit, factor_text = 1, text
    if ":" in text:
        kind, factor_text = (part.strip() for part in text.split(":", 1))
        if kind not in ("horizon", "season"):
            raise UsageError(
                f"windows: {spec!r} names {kind!r}; write steps (24,48) or multiples of the "
                "horizon or season (horizon:1,2,4 or season:1,2)"
            )
        unit = horizon if kind == "horizon" else season
    try:
        factors = [float(v) for v in factor_text.split(",") if v.strip()]
    except ValueError:
        factors = []
    if not factors:
        raise UsageError(
            f"windows: cannot read {spec!r}; write steps (24,48) or multiples of the horizon "
            "or season (horizon:1,2,4 or season:1,2)"
        )
    windows = [f * unit for f in factors]
    fractional = [w for w in windows if not float(w).is_integer()]
    if fractional:
        raise UsageError(
            f"windows: {spec!r} gives {fractional[0]:g} steps, not a whole number; use whole "
            "multiples"
        )
    if any(w < 1 for w in windows):
        raise UsageError(f"windows: every window must be at least 1 step, got {spec!r}")
    return tuple(sorted({int(w) for w in windows}))


def parse_range(text: str, name: str, kind: type[int] | type[float]) -> tuple[Any, Any]:
    """'MIN:MAX' (or one value, meaning MIN == MAX) as a pair of `kind`."""
    parts = [p.strip() for p in text.split(":")]
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        example = "8:64" if kind is int else "1e-4:1e-2"
        raise UsageError(f"{name} takes MIN:MAX such as {example} (or one value), not {text!r}")
    return values[0], values[1]


def parse_choices(text: str, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of choices, each one of `allowed`."""
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise UsageError(
            f"{name} takes a comma-separated list of {', '.join(allowed)}, not {text!r}"
        )
    return values


def load_space_file(path: Path) -> SpaceOverrides:
    """Read a search-space TOML file (any subset of the keys; ranges as [min, max])."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"search space file {path} does not exist; check --space") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"search space file {path} is not valid TOML ({exc})") from None
    raw = raw.get("space", raw)  # a [space] table or top-level keys
    unknown = sorted(set(raw) - set(SPACE_KEYS))
    if unknown:
        raise ConfigError(
            f"search space file {path}: unknown key {unknown[0]!r}; known keys are "
            f"{', '.join(SPACE_KEYS)}"
        )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"search space file {path}: {key}"
        if key in ("cells", "residual", "normalize"):
            allowed = {"cells": CELLS, "residual": RESIDUALS, "normalize": NORMALIZES}[key]
            items = value if isinstance(value, list) else [value]
            values[key] = parse_choices(",".join(map(str, items)), where, allowed)
            if key == "cells":
                values[key] = canonical_cells(values[key])
        elif key == "windows":
            if isinstance(value, str):
                values[key] = value
            elif isinstance(value, list) and all(isinstance(v, int) for v in value):
                values[key] = tuple(value)
            else:
                raise ConfigError(
                    f"{where} must be a list of steps such as [24, 48] or a string such as "
                    f'"horizon:1,2,4", not {value!r}'
                )
        else:
            kind: type[int] | type[float] = int if key in ("units", "layers") else float
            items = value if isinstance(value, list) else [value, value]
            if len(items) != 2 or not all(isinstance(v, int | float) for v in items):
                raise ConfigError(f"{where} must be [min, max], not {value!r}")
            if kind is int and not all(isinstance(v, int) for v in items):
                raise ConfigError(f"{where} must be whole numbers, not {value!r}")
            values[key] = (kind(items[0]), kind(items[1]))
    return SpaceOverrides(**values)


def load_space(path: Path | None, options: SpaceOverrides) -> SpaceOverrides:
    """The overrides asked for: `options` over the search-space TOML file at `path`, if any."""
    return load_space_file(path).merged(options) if path is not None else options


# `forecaster tune` ends in about this long unless told otherwise (the full Hyperband schedule
# takes hours on 20k rows of a 2-core machine), keeping a quarter for retraining.
