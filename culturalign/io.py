"""The common conversation schema, stable ids, and the file I/O every stage shares.

Every training source is turned into rows of the same shape (DESIGN.md, "Common conversation
schema"): id, source, messages (list of {role, content}), meta (JSON string). Rejected rows carry
the same columns plus `drop_reason`, so nothing is ever lost silently.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
SCHEMA = {"id": pl.String, "source": pl.String, "messages": pl.List(MESSAGE), "meta": pl.String}
REJECTED_SCHEMA = {**SCHEMA, "drop_reason": pl.String}
ROLES = ("system", "user", "assistant")


class InputError(ValueError):
    """Bad user input: the message always names the file, and the line/record and field when known."""

    def __init__(self, path: str | os.PathLike, problem: str, *, line: int | None = None,
                 record: int | None = None, field: str | None = None):
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.record, self.field = str(path), line, record, field


def row_id(source: str, index: int | str) -> str:
    """Stable id: a hash of the source name and the row's original index, so reruns keep ids."""
    return hashlib.sha1(f"{source}\x00{index}".encode()).hexdigest()[:16]


def empty(schema: dict = SCHEMA) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def frame(rows: list[dict[str, Any]], schema: dict = SCHEMA) -> pl.DataFrame:
    """Rows (dicts with the schema's keys) to a DataFrame with exactly the schema's dtypes."""
    return pl.DataFrame(rows, schema=schema) if rows else empty(schema)


def write_parquet(df: pl.DataFrame, path: str | os.PathLike) -> None:
    """Write atomically (temp file + rename) so a killed job never leaves a half file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.write_parquet(tmp)
    os.replace(tmp, path)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Pretty, UTF-8 (Chinese stays readable), atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
