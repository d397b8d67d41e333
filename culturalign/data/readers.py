"""Source files to records, streamed: what a training source's `path` may be and how each kind is read.

A source `path` is a file, a directory, or a glob (`data/train-*.parquet`); a directory or glob is one
source whose files are read in sorted name order (a `datasets` save_to_disk directory in its own
order, from state.json), record numbers running on across files so ids stay stable. Each file's kind
is told by its content (io.sniff), never by its name:

  Parquet               read a row group batch at a time (pyarrow), records as dicts
  Arrow IPC file/stream (a `datasets` save_to_disk directory holds streams) likewise
  gzip, zstd, bz2       decompressed as a stream; inside, JSON or JSON lines as below
  JSON / JSON lines     JSON lines line by line; a JSON array element by element (streaming: a 3 GB
                        array is never held whole); any other JSON document (one record, or an object
                        keyed by group like Safety-Prompts') is small and parsed whole

Anything else (a zip or .xlsx, an ORC file, ...) stops with an error that names what the file is.
A damaged or truncated compressed file stops with an error naming the file and the codec. Records
outside [start, stop) are skipped as cheaply as the kind allows (a JSON line is not parsed, a Parquet
row group outside the range is not decoded), which is how a shard reads only its part of a source.
"""
from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from culturalign.io import JSONL_SUFFIXES, KIND_NAMES, InputError, sniff

COMPRESSED = ("gzip", "zstd", "bz2")
COMPRESSION_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".bz2")
ARROW_BATCH = 4096       # rows decoded from Parquet/Arrow per step
TEXT_CHUNK = 1 << 20     # bytes of a JSON array read per step
_STREAM_ERRORS = (EOFError, OSError, zlib.error, pa.ArrowException)


class Entry(NamedTuple):
    key: int | str        # original index for the id: record number, or "<group>/<i>" in a grouped object
    record: Any           # the parsed value; for a malformed JSON line its raw text
    line: int | None      # line number in a JSON lines file
    group: str | None     # the top-level key of a grouped object (Safety-Prompts' scenario)
    error: str | None     # JSON error of a malformed line
    path: str             # the file it came from


def source_files(path: str | os.PathLike, name: str | None = None) -> list[Path]:
    """The files of a source path: the file itself, a directory's files (a save_to_disk directory's
    Arrow files in its own order), or a glob's matches, sorted. None found is an InputError."""
    text = str(path)
    if any(c in text for c in "*?["):
        files = [Path(p) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file()]
        where = "no file matches this glob"
    elif Path(text).is_dir():
        files = _dataset_files(Path(text)) or sorted(
            p for p in Path(text).rglob("*") if p.is_file() and not p.name.startswith(".")
            and p.suffix not in (".md", ".txt", ".lock", ".py") and p.name not in ("dataset_info.json", "state.json"))
        where = "directory holds no data file"
    elif Path(text).is_file():
        return [Path(text)]
    else:
        files, where = [], "no such file (check the source's `path` in the config)"
    if not files:
        raise InputError(text, where if name is None else f"source '{name}': {where}")
    return files


def _dataset_files(directory: Path) -> list[Path]:
    """A `datasets` save_to_disk directory's Arrow files, in the order of its state.json ([] otherwise)."""
    state = directory / "state.json"
    if not state.is_file():
        return []
    try:
        files = [directory / f["filename"] for f in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(state, f"not a datasets save_to_disk state file: {err}") from None
    return files


def kind(path: Path) -> str:
    """parquet, arrow, arrow-stream, json (possibly compressed: json+gzip ...), or an InputError naming what it is."""
    found = sniff(path)
    if found in ("parquet", "arrow", "arrow-stream"):
        return found
    if found in COMPRESSED:
        return f"json+{found}"
    if found == "text":
        return "json"
    raise InputError(path, f"this is {KIND_NAMES[found]}: a source must be JSON or JSON lines (plain, gzip, zstd "
                           "or bz2), Parquet, Arrow IPC or a datasets save_to_disk directory")


def _open_binary(path: Path, codec: str | None):
    if codec == "gzip":
        return gzip.open(path, "rb")
    if codec == "bz2":
        return bz2.open(path, "rb")
    if codec == "zstd":  # pyarrow's codec: no extra dependency for zstd
        return pa.CompressedInputStream(pa.OSFile(str(path)), "zstd")
    return open(path, "rb")


def _json_lines_name(path: Path) -> bool:
    name = path.name.lower()
    for suffix in COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    return name.endswith(JSONL_SUFFIXES)


class _Text:
    """UTF-8 text of a (decompressed) byte stream, read in chunks, strictly decoded: a bad byte raises
    InputError naming its line and byte offset; a BOM is dropped; a damaged stream names its codec."""

    def __init__(self, path: Path, codec: str | None):
        self.path, self.codec = path, codec
        self.stream = _open_binary(path, codec)
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.offset, self.lines, self.first = 0, 0, True

    def read(self, size: int = TEXT_CHUNK) -> str:
        """The next chunk of text ("" at the end)."""
        data = self._bytes(lambda: self.stream.read(size))
        text = self._decode(data, final=not data)
        self.offset += len(data)
        self.lines += data.count(b"\n")
        return text

    def readline(self) -> bytes:
        return self._bytes(self.stream.readline)

    def _bytes(self, read) -> bytes:
        try:
            return read()
        except _STREAM_ERRORS as err:
            what = f"the {self.codec} stream is damaged or truncated" if self.codec else "cannot be read"
            raise InputError(self.path, f"{what}: {err}") from None

    def _decode(self, data: bytes, final: bool) -> str:
        try:
            text = self.decoder.decode(data, final)
        except UnicodeDecodeError as err:
            at = max(err.start, 0)
            line = self.lines + data.count(b"\n", 0, at) + 1
            byte = data[at] if at < len(data) else 0
            raise InputError(self.path, f"not valid UTF-8: byte 0x{byte:02x} at byte offset {self.offset + at} "
                                        "(convert the file to UTF-8)", line=line) from None
        if self.first and text:
            text, self.first = text.removeprefix("\ufeff"), False
        return text

    def decode_line(self, data: bytes, number: int) -> str:
        """One JSON line's bytes to text (its own decoder: lines are whole)."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(self.path, f"not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset "
                                        f"{self.offset + err.start} (convert the file to UTF-8)", line=number) from None
        self.offset += len(data)
        if self.first:
            text, self.first = text.removeprefix("\ufeff"), False
        return text

    def close(self) -> None:
        self.stream.close()


def _first_char(path: Path, codec: str | None) -> str:
    text = _Text(path, codec)
    try:
        while True:
            chunk = text.read(4096)
            if not chunk or chunk.strip():
                return chunk.lstrip()[:1]
    finally:
        text.close()


def _first_line_is_record(path: Path, codec: str | None) -> bool:
    """JSON lines without a .jsonl name: the first line is one whole JSON object."""
    text = _Text(path, codec)
    try:
        while True:
            raw = text.readline()
            if not raw or raw.strip():
                break
        try:
            return isinstance(json.loads(raw.decode("utf-8", "replace")), dict)
        except ValueError:
            return False
    finally:
        text.close()


def _json_lines(path: Path, codec: str | None, first: int, start: int, stop: int | None) -> Iterator[Entry]:
    text = _Text(path, codec)
    index = first
    try:
        number = 0
        while True:
            raw = text.readline()
            if not raw:
                break
            number += 1
            if not raw.strip():
                text.offset += len(raw)
                continue
            if index < start or (stop is not None and index >= stop):  # outside the shard: not parsed
                text.offset += len(raw)
                index += 1
                continue
            line = text.decode_line(raw, number)
            try:
                yield Entry(index, json.loads(line), number, None, None, str(path))
            except json.JSONDecodeError as err:
                yield Entry(index, line.rstrip("\r\n"), number, None, f"{err.msg} (column {err.colno})", str(path))
            index += 1
    finally:
        text.close()


def _json_array(path: Path, codec: str | None, first: int) -> Iterator[Entry]:
    """The elements of a top-level JSON array, one at a time: raw_decode over a text buffer that drops
    what it has consumed, so a one-line 3 GB array is never held whole. Errors name line and column."""
    text = _Text(path, codec)
    decoder = json.JSONDecoder()
    buf, pos, done, index, expect_value = "", 0, False, first, True
    lines, column = 0, 0   # newlines before buf[0], characters of buf[0]'s line before it

    def consume() -> None:
        nonlocal buf, pos, lines, column
        newline = buf.rfind("\n", 0, pos)
        if newline >= 0:
            lines, column = lines + buf.count("\n", 0, pos), pos - newline - 1
        else:
            column += pos
        buf, pos = buf[pos:], 0

    def more() -> bool:
        nonlocal buf, done
        consume()
        chunk = "" if done else text.read()
        done = not chunk
        buf += chunk
        return bool(chunk)

    def bad(problem: str, at: int) -> InputError:
        newline = buf.rfind("\n", 0, at)
        col = at - newline if newline >= 0 else column + at + 1
        return InputError(path, f"not valid JSON: {problem} (column {col})", line=lines + buf.count("\n", 0, at) + 1)

    try:
        more()
        while pos < len(buf) and buf[pos] in " \t\r\n":
            pos += 1
        pos += 1   # the "[" file_entries saw
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos >= len(buf):
                if not more():
                    raise bad("the array is not closed (a truncated file?)", pos)
                continue
            char = buf[pos]
            if char == "]" and (not expect_value or index == first):
                pos += 1
                while pos < len(buf) or more():
                    if buf[pos:].strip():
                        raise bad("Extra data", pos + len(buf[pos:]) - len(buf[pos:].lstrip()))
                    pos = len(buf)
                return
            if not expect_value:
                if char != ",":
                    raise bad("Expecting ',' delimiter", pos)
                pos, expect_value = pos + 1, True
                continue
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as err:
                at = err.pos - pos   # more() moves buf to start at pos
                if more():
                    continue
                raise bad(err.msg, at) from None
            if end == len(buf) and not done and more():  # a value at the end of a chunk may continue
                continue
            yield Entry(index, value, None, None, None, str(path))
            index, pos, expect_value = index + 1, end, False
            if pos > TEXT_CHUNK:
                consume()
    finally:
        text.close()


def _json_document(path: Path, codec: str | None, first: int) -> Iterator[Entry]:
    """A whole JSON document: one record, or an object keyed by group ({scenario: [records]})."""
    text = _Text(path, codec)
    try:
        parts = []
        while chunk := text.read():
            parts.append(chunk)
        body = "".join(parts)
    finally:
        text.close()
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as err:
        raise InputError(path, f"not valid JSON: {err.msg} (column {err.colno})", line=err.lineno) from None
    if isinstance(doc, list) and not doc:
        return
    if not isinstance(doc, dict):
        raise InputError(path, f"expected a list of records or an object keyed by group, found {type(doc).__name__}")
    if any(key in doc for key in RECORD_KEYS):  # a one-record file
        yield Entry(first, doc, None, None, None, str(path))
        return
    for group, records in doc.items():
        if not isinstance(records, list):
            raise InputError(path, f"expected a list of records under '{group}', found {type(records).__name__}",
                             field=group)
        for i, rec in enumerate(records):
            yield Entry(f"{group}/{i}", rec, None, group, None, str(path))


# Keys that make a top-level JSON object one record rather than groups of records (formats.MARKERS' keys).
RECORD_KEYS = ("conversations", "messages", "dialogue", "instruction", "Question", "prompt")


def _arrow_batches(path: Path, found: str) -> Iterator[pa.RecordBatch]:
    try:
        if found == "parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=ARROW_BATCH)
            return
        with pa.OSFile(str(path)) as handle:
            reader = pa.ipc.open_file(handle) if found == "arrow" else pa.ipc.open_stream(handle)
            if found == "arrow":
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
            else:
                yield from reader
    except (pa.ArrowException, OSError) as err:
        raise InputError(path, f"cannot read this {KIND_NAMES[found]}: {err}") from None


def arrow_rows(path: Path) -> int:
    """Rows of a Parquet or Arrow file, from its metadata where it has them."""
    found = kind(path)
    if found == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    return sum(batch.num_rows for batch in _arrow_batches(path, found))


def _arrow_entries(path: Path, found: str, first: int, start: int, stop: int | None) -> Iterator[Entry]:
    index = first
    for batch in _arrow_batches(path, found):
        end = index + batch.num_rows
        lo, hi = max(start, index), end if stop is None else min(stop, end)
        if lo < hi:  # rows of this batch inside [start, stop): only those become Python dicts
            for i, record in enumerate(batch.slice(lo - index, hi - lo).to_pylist()):
                yield Entry(lo + i, record, None, None, None, str(path))
        index = end
        if stop is not None and index >= stop:
            return


def file_entries(path: Path, first: int = 0, start: int = 0, stop: int | None = None) -> Iterator[Entry]:
    """The entries of one file, record numbers starting at `first`; those outside [start, stop) skipped."""
    found = kind(path)
    if found in ("parquet", "arrow", "arrow-stream"):
        yield from _arrow_entries(path, found, first, start, stop)
        return
    codec = found.partition("+")[2] or None
    head = _first_char(path, codec)
    if not head:
        return
    if _json_lines_name(path) or (head == "{" and _first_line_is_record(path, codec) and _more_lines(path, codec)):
        yield from _json_lines(path, codec, first, start, stop)
    elif head == "[":
        for entry in _json_array(path, codec, first):
            if stop is not None and entry.key >= stop:
                return
            if entry.key >= start:
                yield entry
    else:  # one record, an object keyed by group, or not a list of records: small, read whole
        for position, entry in enumerate(_json_document(path, codec, first), first):
            if start <= position and (stop is None or position < stop):
                yield entry


def _more_lines(path: Path, codec: str | None) -> bool:
    """Whether anything but blank lines follows the first non-blank line (then it is JSON lines)."""
    text = _Text(path, codec)
    try:
        seen = False
        while raw := text.readline():
            if raw.strip():
                if seen:
                    return True
                seen = True
        return False
    finally:
        text.close()


def count_records(files: list[Path]) -> list[int]:
    """Records per file, numbered as `entries` numbers them: Parquet/Arrow from metadata, JSON lines by
    counting non-blank lines (nothing parsed), a JSON array or document by reading it."""
    return [arrow_rows(path) if kind(path) in ("parquet", "arrow", "arrow-stream") else _count_json(path)
            for path in files]


def _count_json(path: Path) -> int:
    codec = kind(path).partition("+")[2] or None
    head = _first_char(path, codec)
    if _json_lines_name(path) or (head == "{" and _first_line_is_record(path, codec) and _more_lines(path, codec)):
        text = _Text(path, codec)
        try:
            count = 0
            while raw := text.readline():
                count += bool(raw.strip())
            return count
        finally:
            text.close()
    return sum(1 for _ in file_entries(path))


def entries(files: list[Path], start: int = 0, stop: int | None = None,
            counts: list[int] | None = None) -> Iterator[Entry]:
    """The entries of a source's files in order, record numbers running on across files (a grouped
    object's record keeps its key "<group>/<i>"). `counts` (records per file, `count_records`) is needed
    for a range of a several-file source; a file wholly outside [start, stop) is then not opened."""
    if counts is None and len(files) > 1 and (start or stop is not None):
        counts = count_records(files)
    first = 0
    for i, path in enumerate(files):
        if counts is not None and (first + counts[i] <= start or (stop is not None and first >= stop)):
            first += counts[i]
            continue
        n = 0
        for entry in file_entries(path, first, start, stop):
            yield entry
            n += 1
        first += counts[i] if counts is not None else n
