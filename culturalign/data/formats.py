"""Readers for the training sources: every supported file format to the common conversation schema.

`read_source(path, name, fmt)` returns (rows in io.SCHEMA, rejected rows in io.REJECTED_SCHEMA).
Nothing is lost silently: a record that cannot become a conversation is a rejected row with a
`drop_reason`; a file that cannot be read at all raises io.InputError naming the file, the line or
record and the field.

Formats (`fmt`; auto-detected from the first record's keys when None):
  alpaca          JSON list or JSONL of {instruction, input?, output, system?, history?: [[q, a], ...]}
  sharegpt        {conversations: [{from: human|gpt|system, value}], system?}
  messages        OpenAI {messages: [{role, content}]}
  refgpt          {reference, dialogue}: one string of turns marked Human:/Assistant: (and variants)
  safety_prompts  {scenario: [{prompt, response, type}, ...], ...}
  halluqa         {Question, Best Answer1 (or Best_Answer1 / Best Answer), Category, Source, question_id, ...}

Containers: a JSON document (a list of records, one record, or an object keyed by group such as
Safety-Prompts' scenarios) or JSON lines (one object a line: a .jsonl/.ndjson suffix, or any file whose
first object is followed by more). A trailing user turn is trimmed (meta `trimmed_turns`) when an
assistant turn remains before it.

Drop reasons of the reader:
  malformed_json              a JSONL line that does not parse (meta: line number, the raw text, cut)
  not_an_object               a record that is not a JSON object
  missing_field:<field>       a required field is absent or null
  wrong_type:<field>          a field of the wrong type (e.g. output is a list or a number)
  unknown_role:<field>        a turn whose speaker is none of system/user/assistant (or their aliases)
  malformed_dialogue          a RefGPT dialogue without turn markers, or with text before the first one
  no_assistant_turn           no assistant turn at all (a trailing user turn is trimmed when one remains)
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import polars as pl
import pyarrow as pa
from tqdm import tqdm

from culturalign.io import REJECTED_SCHEMA, SCHEMA, InputError, parse_json, read_text, role, row_id

RAW_CHARS = 1000        # how much of a rejected record's raw text is kept in its meta, for the reviewer
PROGRESS_MIN = 200_000  # records: below this a read takes about a second, not worth a progress bar
HALLUQA_ANSWER_KEYS = ("Best Answer1", "Best_Answer1", "Best Answer")

# A RefGPT turn marker: Human/Assistant in any case, then an optional role note in half- or full-width
# parentheses ("Human(用户)", "Assistant（助手）"), then a half- or full-width colon. It must open the
# text or follow whitespace, so a "human:" glued inside a word is left alone.
TURN_MARK = re.compile(r"(?:^|(?<=\s))(human|assistant)[ \t]*(?:[(（][^()（）\n]{0,20}[)）])?[ \t]*[:：]",
                       re.IGNORECASE)


class _Reject(Exception):
    """A record that cannot become a conversation: routed to the rejected rows with `reason`."""

    def __init__(self, reason: str, messages: list[dict] | None = None):
        super().__init__(reason)
        self.reason, self.messages = reason, messages or []


class _Entry(NamedTuple):
    key: int | str        # original index for the id: record number, or "<group>/<i>" in a grouped object
    record: Any           # the parsed JSON value; for a malformed line its raw text
    line: int | None      # line number in a JSONL file
    group: str | None     # the top-level key of a grouped object (Safety-Prompts' scenario)
    error: str | None     # JSON error of a malformed line


# ---------------------------------------------------------------- fields and turns

def _text(rec: dict, key: str, *, required: bool = True) -> str | None:
    """A string field; absent/null is a missing field when required, anything but a string a wrong type."""
    value = rec.get(key)
    if value is None:
        if required:
            raise _Reject(f"missing_field:{key}")
        return None
    if not isinstance(value, str):
        raise _Reject(f"wrong_type:{key}")
    return value


def _system(rec: dict) -> list[dict]:
    system = _text(rec, "system", required=False)
    return [{"role": "system", "content": system}] if system and system.strip() else []


def _turn_list(rec: dict, field: str, role_key: str, text_key: str) -> list[dict]:
    """A list of {role_key, text_key} turns (ShareGPT, OpenAI messages) with the roles mapped."""
    turns = rec.get(field)
    if turns is None:
        raise _Reject(f"missing_field:{field}")
    if not isinstance(turns, list) or not all(isinstance(t, dict) and isinstance(t.get(text_key), str)
                                              for t in turns):
        raise _Reject(f"wrong_type:{field}")
    messages = []
    for turn in turns:
        speaker = role(turn.get(role_key, ""))
        if speaker is None:
            raise _Reject(f"unknown_role:{field}")
        messages.append({"role": speaker, "content": turn[text_key]})
    return messages


def split_dialogue(dialogue: str) -> list[dict]:
    """RefGPT's one-string dialogue to turns, split at every Human:/Assistant: marker variant."""
    marks = list(TURN_MARK.finditer(dialogue))
    if not marks or dialogue[:marks[0].start()].strip():
        raise _Reject("malformed_dialogue")
    ends = [m.start() for m in marks[1:]] + [len(dialogue)]
    return [{"role": "user" if m.group(1).lower() == "human" else "assistant",
             "content": dialogue[m.end():end].strip()} for m, end in zip(marks, ends)]


# ---------------------------------------------------------------- one converter per format

def _alpaca(rec: dict) -> list[dict]:
    instruction, output = _text(rec, "instruction"), _text(rec, "output")
    extra = _text(rec, "input", required=False)
    history = rec.get("history") or []
    if not isinstance(history, list) or not all(
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair) for pair in history):
        raise _Reject("wrong_type:history")
    messages = _system(rec)
    for question, answer in history:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    user = instruction + "\n" + extra if extra else instruction
    return messages + [{"role": "user", "content": user}, {"role": "assistant", "content": output}]


def _sharegpt(rec: dict) -> list[dict]:
    return _system(rec) + _turn_list(rec, "conversations", "from", "value")


def _messages(rec: dict) -> list[dict]:
    return _turn_list(rec, "messages", "role", "content")


def _refgpt(rec: dict) -> list[dict]:
    return split_dialogue(_text(rec, "dialogue"))


def _safety_prompts(rec: dict) -> list[dict]:
    # Some published responses start with blank lines: strip them, not the prompt's own layout.
    return [{"role": "user", "content": _text(rec, "prompt")},
            {"role": "assistant", "content": _text(rec, "response").strip()}]


def _halluqa(rec: dict) -> list[dict]:
    # The published file spells the answer key inconsistently across versions: take the first present.
    key = next((k for k in HALLUQA_ANSWER_KEYS if rec.get(k) is not None), HALLUQA_ANSWER_KEYS[0])
    return [{"role": "user", "content": _text(rec, "Question")}, {"role": "assistant", "content": _text(rec, key)}]


@dataclass(frozen=True)
class _Format:
    convert: Callable[[dict], list[dict]]   # record -> messages; raises _Reject
    turn_keys: frozenset[str]               # fields that became turns; the other fields go to meta ...
    keep: tuple[str, ...] | None = None     # ... unless only these are worth keeping


READERS: dict[str, _Format] = {
    "alpaca": _Format(_alpaca, frozenset({"instruction", "input", "output", "system", "history"})),
    "sharegpt": _Format(_sharegpt, frozenset({"conversations", "system"})),
    "messages": _Format(_messages, frozenset({"messages"})),
    "refgpt": _Format(_refgpt, frozenset({"dialogue"})),
    "safety_prompts": _Format(_safety_prompts, frozenset({"prompt", "response"})),
    # The other best and the wrong answers are evaluation material, not training metadata.
    "halluqa": _Format(_halluqa, frozenset(), keep=("Category", "Class", "Source", "Question Pattern", "question_id")),
}
FORMATS = tuple(READERS)

# Auto-detection: the first format whose marker keys the first record has.
MARKERS = (("sharegpt", {"conversations"}), ("messages", {"messages"}), ("refgpt", {"dialogue"}),
           ("alpaca", {"instruction"}), ("halluqa", {"Question"}), ("safety_prompts", {"prompt", "response"}))


# ---------------------------------------------------------------- files to entries

def _error(path: str | os.PathLike, name: str | None, problem: str, **where: Any) -> InputError:
    return InputError(path, problem if name is None else f"source '{name}': {problem}", **where)


def _is_record(obj: dict) -> bool:
    return any(keys <= obj.keys() for _, keys in MARKERS)


def _document_entries(path: Path, name: str | None, doc: Any) -> list[_Entry]:
    if isinstance(doc, list):
        return [_Entry(i, rec, None, None, None) for i, rec in enumerate(doc)]
    if isinstance(doc, dict) and _is_record(doc):  # a one-record file
        return [_Entry(0, doc, None, None, None)]
    if isinstance(doc, dict):  # grouped, like Safety-Prompts: {scenario: [records]}
        entries = []
        for group, records in doc.items():
            if not isinstance(records, list):
                raise _error(path, name, f"expected a list of records under '{group}', found "
                                         f"{type(records).__name__}", field=group)
            entries += [_Entry(f"{group}/{i}", rec, None, group, None) for i, rec in enumerate(records)]
        return entries
    raise _error(path, name, f"expected a list of records or an object keyed by group, found {type(doc).__name__}")


def _entries(path: Path, name: str | None) -> list[_Entry]:
    context = None if name is None else f"source '{name}'"
    if not path.is_file():
        raise _error(path, name, "no such file (check the source's `path` in the config)")
    text = read_text(path, context=context)
    if not text.strip():
        raise _error(path, name, "file is empty / has no records")
    parsed = parse_json(path, text, context=context)
    if parsed.lines is None:
        entries = _document_entries(path, name, parsed.document)
    else:
        entries = [_Entry(i, line.value, line.line, None, line.error) for i, line in enumerate(parsed.lines)]
    if not entries:
        raise _error(path, name, "file is empty / has no records")
    return entries


def _detect(path: Path, name: str | None, entries: list[_Entry]) -> str:
    first = next((e.record for e in entries if e.error is None and isinstance(e.record, dict)), None)
    if first is None:
        raise _error(path, name, "no JSON object among the records: cannot detect the format")
    for fmt, keys in MARKERS:
        if keys <= first.keys():
            return fmt
    raise _error(path, name, f"cannot detect the format from the first record's keys {sorted(first)} "
                             f"(set `format:` to one of {', '.join(FORMATS)})")


def _check_format(path: Path, name: str | None, fmt: str) -> str:
    if fmt not in READERS:
        raise _error(path, name, f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    return fmt


def detect_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format of a source file: `fmt` when given (checked), else detected from the first record's keys."""
    path = Path(path)
    if fmt is not None:
        return _check_format(path, None, fmt)
    return _detect(path, None, _entries(path, None))


# ---------------------------------------------------------------- entries to rows

def _meta(spec: _Format, rec: dict, entry: _Entry) -> dict:
    if spec.keep is not None:
        meta = {k: rec[k] for k in spec.keep if k in rec}
    else:
        meta = {k: v for k, v in rec.items() if k not in spec.turn_keys}
    if entry.group is not None:
        meta["scenario"] = entry.group
    return meta


def _end_with_assistant(messages: list[dict]) -> list[dict]:
    """Trim turns after the last assistant turn (a question without an answer teaches nothing)."""
    if messages and messages[-1]["role"] == "assistant":  # the common case, without a scan
        return messages
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    if last < 0:
        raise _Reject("no_assistant_turn", messages)
    return messages[:last + 1]


def _convert(spec: _Format, entry: _Entry) -> tuple[list[dict], dict]:
    """One entry to (messages, meta); raises _Reject."""
    if entry.error is not None:
        raise _Reject("malformed_json")
    if not isinstance(entry.record, dict):
        raise _Reject("not_an_object")
    messages = spec.convert(entry.record)
    kept = _end_with_assistant(messages)
    meta = _meta(spec, entry.record, entry)
    if len(kept) < len(messages):
        meta["trimmed_turns"] = len(messages) - len(kept)  # said, not silent
    return kept, meta


def _rejected_meta(entry: _Entry) -> dict:
    raw = entry.record if entry.error is not None else json.dumps(entry.record, ensure_ascii=False)
    meta: dict[str, Any] = {"raw": raw[:RAW_CHARS]}
    if entry.line is not None:
        meta["line"] = entry.line
    if entry.error is not None:
        meta["error"] = entry.error
    if entry.group is not None:
        meta["scenario"] = entry.group
    return meta


def _json(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False) if obj else "{}"


def _frame(rows: list[dict], schema: dict) -> pl.DataFrame:
    """io.frame built through flat Arrow arrays: polars' and pyarrow's conversions of nested Python dicts
    take 2-3 s for 100K rows, flat string arrays plus list offsets a tenth of that."""
    columns = {col: pa.array([row[col] for row in rows], pa.large_string()) for col in schema if col != "messages"}
    offsets, roles, contents = [0], [], []
    for row in rows:
        for message in row["messages"]:
            roles.append(message["role"])
            contents.append(message["content"])
        offsets.append(len(roles))
    turns = pa.StructArray.from_arrays([pa.array(roles, pa.large_string()), pa.array(contents, pa.large_string())],
                                       names=["role", "content"])
    columns["messages"] = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), turns)
    return pl.from_arrow(pa.table(columns)).select(list(schema)).cast(schema)


def read_source(path: str | os.PathLike, name: str, fmt: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Read one training source: (rows in io.SCHEMA, rejected rows in io.REJECTED_SCHEMA).

    `fmt` (one of FORMATS) wins when given; else the format is detected from the first record's keys.
    Ids are row_id(name, original index) ("<scenario>/<i>" for a grouped object), stable across reruns.
    """
    path = Path(path)
    if fmt is not None:
        _check_format(path, name, fmt)  # before reading a large file
    entries = _entries(path, name)
    spec = READERS[fmt or _detect(path, name, entries)]
    rows, rejected = [], []
    for entry in tqdm(entries, desc=f"read {name}", unit="rec", file=sys.stderr,
                      disable=len(entries) < PROGRESS_MIN):
        base = {"id": row_id(name, entry.key), "source": name}
        try:
            messages, meta = _convert(spec, entry)
        except _Reject as reject:
            rejected.append({**base, "messages": reject.messages, "drop_reason": reject.reason,
                             "meta": _json(_rejected_meta(entry))})
            continue
        rows.append({**base, "messages": messages, "meta": _json(meta)})
    return _frame(rows, SCHEMA), _frame(rejected, REJECTED_SCHEMA)
