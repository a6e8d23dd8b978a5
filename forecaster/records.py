"""Typed records as JSON: dataclasses to plain values and back, without running any code.

Stages hand each other dataclasses; those written to disk (the bundle, an export's measurements,
the GRU-vs-LSTM comparison, the device check) are rebuilt from JSON by `from_plain`, which only
calls the dataclasses' own constructors: no pickle, no imports named by the file.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections.abc import Callable, Hashable
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
    result: T = _builder(typing.cast(Hashable, kind))(value)
    return result


def write_record(path: Path, record: Any) -> None:
    """Write a record as indented JSON, atomically."""
    write_text_atomic(path, json.dumps(to_plain(record), indent=2, allow_nan=False) + "\n")


def read_record(path: Path, kind: type[T]) -> T:
    """Read a record written by `write_record`."""
    return from_plain(kind, json.loads(path.read_text(encoding="utf-8")))


@functools.cache
def _builder(kind: Any) -> Callable[[Any], Any]:
    """The function that rebuilds a value of `kind` from JSON, made once per type: a bundle of
    a thousand series rebuilds the same few types tens of thousands of times."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        inner = _builder(options[0])
        return lambda value: None if value is None else inner(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.name: _builder(hints[f.name]) for f in dataclasses.fields(kind)}

        def record(value: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected an object for {kind.__name__}")
            return kind(**{k: fields[k](v) for k, v in value.items() if k in fields})

        return record
    if origin in (tuple, list):
        item = _builder(typing.get_args(kind)[0])

        def sequence(value: Any) -> Any:
            if not isinstance(value, list):
                raise TypeError(f"expected a list, got {type(value).__name__}")
            return origin(item(v) for v in value)

        return sequence
    if origin is dict:
        entry = _builder(typing.get_args(kind)[1])

        def mapping(value: Any) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected an object, got {type(value).__name__}")
            return {k: entry(v) for k, v in value.items()}

        return mapping
    if kind is float:
        return lambda value: math.nan if value is None else float(value)
    if kind in (int, str, bool):

        def scalar(value: Any) -> Any:
            if not isinstance(value, kind):
                raise TypeError(f"expected {kind.__name__}, got {value!r}")
            return value

        return scalar
    return lambda value: value
