"""Typed records as JSON: dataclasses to plain values and back, without running any code.

Stages hand each other dataclasses; those written to disk (the bundle, an export's measurements,
the GRU-vs-LSTM comparison, the device check) are rebuilt from JSON by `from_plain`, which only
calls the dataclasses' own constructors: no pickle, no imports named by the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from forecaster.files import write_text_atomic

T = TypeVar("T")


def to_plain(record: Any) -> Any:
    """A dataclass (or a list/dict of them) as plain JSON values.

    JSON has no infinity or NaN (Python writes them, other readers refuse them), so a number
    that is not finite, such as a ratio to a baseline without error, becomes null.
    """
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return to_plain(dataclasses.asdict(record))
    if isinstance(record, list | tuple):
        return [to_plain(r) for r in record]
    if isinstance(record, dict):
        return {k: to_plain(v) for k, v in record.items()}
    if isinstance(record, float) and not math.isfinite(record):
        return None
    return record


def from_plain(kind: type[T], value: Any) -> T:
    """Turn parsed JSON back into the typed value `kind`; TypeError/KeyError when it does not fit.

    Unknown keys are ignored, so a file written by a newer forecaster with extra fields loads.
    """
    result: T = _build(kind, value)
    return result


def write_record(path: Path, record: Any) -> None:
    """Write a record as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(to_plain(record), indent=2, allow_nan=False) + "\n")


def read_record(path: Path, kind: type[T]) -> T:
    """Read a record written by `write_record`."""
    return from_plain(kind, json.loads(path.read_text(encoding="utf-8")))


def _build(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else _build(options[0], value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {kind.__name__}")
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        return kind(**{k: _build(hints[k], v) for k, v in value.items() if k in known})
    if origin is tuple:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return tuple(_build(typing.get_args(kind)[0], v) for v in value)
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return [_build(typing.get_args(kind)[0], v) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {type(value).__name__}")
        item = typing.get_args(kind)[1]
        return {k: _build(item, v) for k, v in value.items()}
    if kind is float:
        return math.nan if value is None else float(value)
    if kind in (int, str, bool) and not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}, got {value!r}")
    return value
