"""Writing results: JSON that holds no NaN, and atomic writes (temp file + rename).

An interrupted run never leaves a half-written result: every file is written to a temporary file
in the same folder and renamed over the target in one step.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, tuples and paths turned into JSON types; NaN/inf -> None
    (JSON has no NaN: null says "not defined")."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` gives a new file (0o666 less the umask): temporary files
    are created 0o600, and the result must not end up more private than a direct write would make it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def _temp_file(path: Path) -> Path:
    """A new empty temporary file beside ``path`` (same folder, so the rename is atomic), whose name
    ends with ``path``'s suffix (matplotlib and numpy choose the format by the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a library that writes to a path (pandas
    ``to_parquet``/``to_csv``, matplotlib ``savefig``, numpy ``savez``); on success it is renamed over
    ``path`` in one step, on any error or interrupt it is removed and ``path`` is left as it was::

        with atomic_path(out / "table.parquet") as tmp:
            frame.to_parquet(tmp)
    """
    path = Path(path)
    tmp = _temp_file(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(folder: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder inside ``folder`` for code that writes several files into a
    folder; on success every file written there is moved into ``folder`` (same relative path, each
    by one atomic rename), on any error or interrupt the staging folder is removed, so ``folder``
    never holds a half-written result."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging.", dir=folder))
    try:
        yield stage
        for src in sorted(p for p in stage.rglob("*") if p.is_file()):
            dst = folder / src.relative_to(stage)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders created); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json(path: str | Path | None, payload: dict[str, Any]) -> Path | None:
    """Write ``payload`` as indented JSON to ``path`` atomically (parent folders created); no-op for None."""
    if path is None:
        return None
    return write_text_atomic(path, json.dumps(jsonable(payload), indent=2, sort_keys=False) + "\n")
