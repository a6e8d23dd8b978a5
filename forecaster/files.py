"""Writing files and directories atomically, so that a failure never leaves half a result."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; on success it is renamed over `path`.

    On any error the temporary file is removed, so `path` is either the old file or the whole
    new one, never half of it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def staged_dir(target: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside `target`; on success it becomes `target` by a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield stage
        if target.exists() and overwrite:
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.replace(old)
            stage.replace(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.replace(target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
