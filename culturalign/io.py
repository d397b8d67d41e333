"""The common conversation schema, stable ids, and the file I/O every stage shares.

Every training source is turned into rows of the same shape (DESIGN.md, "Common conversation
schema"): id, source, messages (list of {role, content}), meta (JSON string). Rejected rows carry
the same columns plus `drop_reason`, so nothing is ever lost silently.

The one JSON / JSON lines reader (`read_text`, `parse_json`, `read_json`) every loader uses: strict
UTF-8 (a bad byte names its line and byte offset), a BOM removed, lines split on "\n" only (U+2028
may stand unescaped inside a JSON string), errors naming the file and the line. `sniff` tells what a
file is from its first bytes (Parquet, Arrow, gzip/zstd/bz2, zip, text), so a binary file handed to a
JSON reader is named for what it is instead of failing on its first non-UTF-8 byte.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
SCHEMA = {"id": pl.String, "source": pl.String, "messages": pl.List(MESSAGE), "meta": pl.String}
REJECTED_SCHEMA = {**SCHEMA, "drop_reason": pl.String}
ROLES = ("system", "user", "assistant")
# Speaker names of the published formats (ShareGPT's human/gpt, chat logs' bot/model), lowercase.
ROLE_ALIASES = {"system": "system", "user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant",
                "chatgpt": "assistant", "bot": "assistant", "model": "assistant"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")


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
        self.path, self.line, self.record, self.field, self.problem = str(path), line, record, field, problem

    def within(self, context: str) -> "InputError":
        """The same error with `context` (e.g. "source 'belle'") before its problem."""
        if self.problem.startswith(context):
            return self
        return InputError(self.path, f"{context}: {self.problem}", line=self.line, record=self.record,
                          field=self.field)


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


def role(name: Any) -> str | None:
    """The schema role of a speaker name (ROLE_ALIASES, case and surrounding space ignored), else None."""
    return ROLE_ALIASES.get(str(name).strip().lower())


# First bytes of the binary files users hand over instead of JSON, and what to call them.
MAGIC = ((b"PAR1", "parquet"), (b"ARROW1", "arrow"), (b"\xff\xff\xff\xff", "arrow-stream"), (b"\x1f\x8b", "gzip"),
         (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"), (b"PK\x03\x04", "zip"), (b"ORC", "orc"),
         (b"\xfd7zXZ\x00", "xz"), (b"SQLite format 3", "sqlite"))
KIND_NAMES = {"parquet": "a Parquet file", "arrow": "an Arrow IPC file", "arrow-stream": "an Arrow IPC stream",
              "gzip": "gzip-compressed", "zstd": "zstd-compressed", "bz2": "bz2-compressed",
              "zip": "a zip archive (or .xlsx)", "orc": "an ORC file", "xz": "xz-compressed", "sqlite": "an SQLite database"}


def sniff(path: str | os.PathLike) -> str:
    """What a file is, from its first bytes: a key of KIND_NAMES, or "text" (anything else)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), "text")


def _problem(context: str | None, problem: str) -> str:
    return problem if context is None else f"{context}: {problem}"


def read_text(path: str | os.PathLike, *, context: str | None = None) -> str:
    """A UTF-8 file's text, decoded strictly: a non-UTF-8 byte raises InputError naming its line and byte
    offset. A BOM is valid UTF-8 but not valid JSON: it is removed. `context` prefixes error messages."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, _problem(context, "no such file"))
    kind = sniff(path)
    if kind != "text":
        raise InputError(path, _problem(context, f"this is {KIND_NAMES[kind]}, not JSON text "
                                                 "(only training sources may be Parquet, Arrow or compressed)"))
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(path, _problem(context, f"not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset "
                                                 f"{err.start} (convert the file to UTF-8)"), line=line) from None
    return text.removeprefix("\ufeff")


class JsonLine(NamedTuple):
    line: int             # 1-based line number
    value: Any            # the parsed value; for a malformed line its raw text
    error: str | None     # the JSON error of a malformed line


def json_lines(text: str) -> list[JsonLine]:
    """Every non-blank line of a JSON lines text, parsed (a malformed one kept with its error)."""
    lines = []
    # split("\n"), not splitlines(): U+2028 and friends may stand unescaped inside JSON strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            lines.append(JsonLine(number, json.loads(line), None))
        except json.JSONDecodeError as err:
            lines.append(JsonLine(number, line, f"{err.msg} (column {err.colno})"))
    return lines


class ParsedJson(NamedTuple):
    document: Any                   # the document's value (None for JSON lines)
    lines: list[JsonLine] | None    # the lines of a JSON lines file (None for a document)


def parse_json(path: str | os.PathLike, text: str, *, context: str | None = None) -> ParsedJson:
    """A JSON document, or JSON lines: a .jsonl/.ndjson suffix, or a first object followed by more
    ("Extra data"; a broken list after its "]" is not JSON lines). Other invalid JSON raises InputError
    naming the line; a malformed JSON line is left to the caller (kept in `lines` with its error)."""
    path = Path(path)
    if path.suffix.lower() in JSONL_SUFFIXES:
        return ParsedJson(None, json_lines(text))
    try:
        return ParsedJson(json.loads(text), None)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and text.lstrip().startswith("{"):
            return ParsedJson(None, json_lines(text))
        raise InputError(path, _problem(context, f"not valid JSON: {err.msg} (column {err.colno})"),
                         line=err.lineno) from None


def read_json(path: str | os.PathLike, *, context: str | None = None) -> Any:
    """A JSON document's value, or a JSON lines file's values as a list; a malformed line raises InputError."""
    parsed = parse_json(path, read_text(path, context=context), context=context)
    if parsed.lines is None:
        return parsed.document
    for line in parsed.lines:
        if line.error is not None:
            raise InputError(path, _problem(context, f"not valid JSON: {line.error}"), line=line.line)
    return [line.value for line in parsed.lines]
