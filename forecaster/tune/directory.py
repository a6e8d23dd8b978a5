"""The search directory: its layout, search.json, and the identity resumes and workers share."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster import __version__
from forecaster.config import DataConfig, SplitConfig
from forecaster.errors import ConfigError, UsageError
from forecaster.files import sha256_of, write_text_atomic
from forecaster.tune.config import TuneConfig
from forecaster.tune.space import SearchSpace

if TYPE_CHECKING:
    from forecaster.data.load import SensorData

SEARCH_FILE = "search.json"
TUNER_DIR = "tuner"
WINNER_DIR = "winner"
RUNNER_UP_DIR = "runner_up"
SEARCH_SCHEMA = 1


IDENTITY_LABELS = {
    "file_sha256": "data file (its SHA-256 checksum)",
    "data": "data options",
    "split": "--split",
    "horizon": "--horizon",
    "season": "--season",
    "space": "search space",
    "tuner": "--tuner",
    "seed": "--seed",
    "max_epochs": "--max-epochs",
    "patience": "--patience",
    "batch_size": "--batch-size",
    "hyperband_factor": "Hyperband factor",
    "loss": "--loss",
    "lags": "--lags",
    "id_col": "--id-col",
    "series_ids": "--no-series-ids",
}


def search_identity(
    file: Path,
    data: SensorData,
    data_config: DataConfig,
    split: SplitConfig,
    horizon: int,
    seasons: tuple[int, ...],
    space: SearchSpace,
    config: TuneConfig,
) -> dict[str, Any]:
    """Everything a resumed search or a worker must share with the search in the directory."""
    identity: dict[str, Any] = {
        "file_sha256": sha256_of(file),
        "data": {
            "targets": list(data.targets),
            "features": list(data.features),
            "time_col": data.time_col,
            "dedupe": data_config.dedupe,
            "max_gap": data_config.max_gap,
            "bad_rows": data_config.bad_rows,
        },
        "split": [split.train, split.val, split.test],
        "horizon": horizon,
        "season": list(seasons),
        "space": space.to_json(),
        "tuner": config.tuner,
        "seed": config.seed,
        "max_epochs": config.max_epochs,
        "patience": config.patience,
        "batch_size": config.batch_size,
        "hyperband_factor": config.hyperband_factor,
        "loss": config.loss,
        "lags": config.lags,
    }
    if data_config.id_col is not None:
        # A fleet's search: its trials' inputs depend on these too. Absent for one series, so
        # searches written before fleets existed still resume.
        identity |= {"id_col": data_config.id_col, "series_ids": config.series_ids}
    return identity


def compare_identity(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first difference between two identities, in words; None when they match."""
    for key, label in IDENTITY_LABELS.items():
        old, new = stored.get(key), current.get(key)
        if old == new:
            continue
        if key == "file_sha256":
            return f"{label} ({str(old)[:12]}... then, {str(new)[:12]}... now)"
        if isinstance(old, dict) and isinstance(new, dict):
            for sub in new:
                if old.get(sub) != new.get(sub):
                    return f"{label}: {sub} ({_text(old.get(sub))} then, {_text(new.get(sub))} now)"
        return f"{label} ({_text(old)} then, {_text(new)} now)"
    return None


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def default_out(file: Path) -> Path:
    """models/<file stem>-tune-<UTC time>."""
    from forecaster.layout import DEFAULT_MODELS_DIR

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return DEFAULT_MODELS_DIR / f"{file.stem}-tune-{stamp}"


def check_out(out: Path | None, file: Path, *, resume: bool, overwrite: bool, role: str) -> Path:
    """Refuse contradictory or unsafe output options before any work."""
    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other; pass one of them")
    if role == "worker":
        if overwrite:
            raise UsageError(
                "a worker never overwrites the shared search directory; pass --overwrite to the "
                "chief only"
            )
        if out is None:
            raise UsageError("a worker needs --out, the search directory it shares with the chief")
        return out
    if out is None:
        if resume:
            raise UsageError("--resume needs --out, the directory of the search to continue")
        out = default_out(file)
    if resume and not (out / SEARCH_FILE).exists():
        raise ConfigError(
            f"nothing to resume in {out}: {SEARCH_FILE} is missing; run without --resume to start "
            "a search there"
        )
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory; choose another --out")
    if out.exists() and not resume and not overwrite:
        raise ConfigError(
            f"{out} already exists; pass --resume to continue its search, --overwrite to start "
            "again, or choose another --out"
        )
    if overwrite and out.exists() and any(out.iterdir()) and not (out / SEARCH_FILE).exists():
        raise ConfigError(
            f"{out} is not a forecaster search directory ({SEARCH_FILE} is missing), so "
            "--overwrite will not delete it; choose another --out"
        )
    return out


def open_out(out: Path, identity: dict[str, Any], *, resume: bool, overwrite: bool) -> None:
    """Create the search directory and search.json, or check search.json on --resume."""
    path = out / SEARCH_FILE
    if resume:
        stored = _read_search_file(path)
        difference = compare_identity(stored.get("identity", {}), identity)
        if difference:
            raise ConfigError(
                f"cannot resume {out}: it was searched with a different {difference}; rerun with "
                "the original options, or start a new search with another --out"
            )
        return
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "schema_version": SEARCH_SCHEMA,
        "identity": identity,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "forecaster_version": __version__,
    }
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")


def _read_search_file(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing; run the chief (or a search) there first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path} is corrupt ({exc}); start a new search with another --out"
        ) from None
    if not isinstance(raw, dict) or raw.get("schema_version") != SEARCH_SCHEMA:
        raise ConfigError(f"{path} was not written by this forecaster; start a new search")
    return raw


def check_worker_identity(out: Path, identity: dict[str, Any]) -> None:
    """Refuse to work for a chief whose search differs from this worker's options."""
    stored = _read_search_file(out / SEARCH_FILE)
    difference = compare_identity(stored.get("identity", {}), identity)
    if difference:
        raise ConfigError(
            f"the chief's search in {out} uses a different {difference}; start the worker with "
            "the chief's data and search options"
        )
