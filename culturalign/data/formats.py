"""Readers for the training sources: every supported file format to the common conversation schema.

`read_batches(path, name, fmt)` yields (rows in io.SCHEMA, rejected rows in io.REJECTED_SCHEMA) a
batch at a time, for a range of records if asked (a shard); `read_source` returns them all at once.
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

Containers (culturalign/data/readers.py): JSON or JSON lines, plain or gzip/zstd/bz2, Parquet, Arrow,
a datasets save_to_disk directory, or a directory or glob of such files; told by content. A JSON
document is a list of records, one record, or an object keyed by group such as Safety-Prompts'
scenarios. A trailing user turn is trimmed (meta `trimmed_turns`) when an assistant turn remains before it.

Renamed fields: `columns` maps a format's field names to the file's ({instruction: prompt, output:
response}); `roles` a conversation format's turn keys and speaker names, with LLaMA-Factory's tags
(role_tag, content_tag, user_tag, assistant_tag, system_tag). A mapped column the first record lacks
is an InputError naming the file.

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
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Any, Callable

import polars as pl
import pyarrow as pa

from culturalign.data.readers import Entry, entries, source_files
from culturalign.io import REJECTED_SCHEMA, ROLES, SCHEMA, InputError, role, row_id

RAW_CHARS = 1000        # how much of a rejected record's raw text is kept in its meta, for the reviewer
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
    turns: tuple[str, str, str] | None = None  # a conversation format's (field, role key, text key)


READERS: dict[str, _Format] = {
    "alpaca": _Format(_alpaca, frozenset({"instruction", "input", "output", "system", "history"})),
    "sharegpt": _Format(_sharegpt, frozenset({"conversations", "system"}), turns=("conversations", "from", "value")),
    "messages": _Format(_messages, frozenset({"messages"}), turns=("messages", "role", "content")),
    "refgpt": _Format(_refgpt, frozenset({"dialogue"})),
    "safety_prompts": _Format(_safety_prompts, frozenset({"prompt", "response"})),
    # The other best and the wrong answers are evaluation material, not training metadata.
    "halluqa": _Format(_halluqa, frozenset(), keep=("Category", "Class", "Source", "Question Pattern", "question_id")),
}
FORMATS = tuple(READERS)

# What a `columns:` mapping may name (the fields the converters read) and a `roles:` mapping's keys
# (LLaMA-Factory's dataset_info.json tags).
FORMAT_FIELDS = frozenset({"instruction", "input", "output", "system", "history", "conversations", "messages",
                           "dialogue", "prompt", "response", "Question", *HALLUQA_ANSWER_KEYS})
ROLE_TAGS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "system_tag")
BATCH_ROWS = 50_000   # records converted per batch: bounds the Python objects alive at once

# Auto-detection: the first format whose marker keys the first record has.
MARKERS = (("sharegpt", {"conversations"}), ("messages", {"messages"}), ("refgpt", {"dialogue"}),
           ("alpaca", {"instruction"}), ("halluqa", {"Question"}), ("safety_prompts", {"prompt", "response"}))


# ---------------------------------------------------------------- column and role mappings

def _error(path: str | os.PathLike, name: str | None, problem: str, **where: Any) -> InputError:
    return InputError(path, problem if name is None else f"source '{name}': {problem}", **where)


def check_mapping(path: str | os.PathLike, name: str | None, columns: dict | None, roles: dict | None) -> None:
    """A `columns:` mapping names fields of the formats (any of FORMAT_FIELDS), `roles:` only ROLE_TAGS."""
    for ours in columns or {}:
        if ours not in FORMAT_FIELDS:
            raise _error(path, name, f"columns: unknown field '{ours}' (fields: {', '.join(sorted(FORMAT_FIELDS))})",
                         field=f"columns.{ours}")
    for tag in roles or {}:
        if tag not in ROLE_TAGS:
            raise _error(path, name, f"roles: unknown key '{tag}' (keys: {', '.join(ROLE_TAGS)})", field=f"roles.{tag}")


def _named(items: Iterator, name: str | None) -> Iterator:
    """`items`, with the source's name in any InputError reading them raises."""
    try:
        yield from items
    except InputError as err:
        raise (err if name is None else err.within(f"source '{name}'")) from None


def _check_columns(entry: Entry, name: str | None, columns: dict | None) -> None:
    """Every column the mapping names is in the first record (a Parquet/Arrow record has every column)."""
    if not columns or not isinstance(entry.record, dict):
        return
    missing = [f"'{theirs}' (for {ours})" for ours, theirs in columns.items() if theirs not in entry.record]
    if missing:
        raise _error(entry.path, name, f"columns: {', '.join(missing)} not in the first record, whose fields are "
                                       f"{sorted(entry.record)}", field="columns")


def _mapped(rec: dict, spec: "_Format", columns: dict | None, roles: dict | None) -> dict:
    """A record with the file's field names replaced by the format's (`columns`), and its turns' role and
    text keys and speaker names by the format's (`roles`, LLaMA-Factory's tags)."""
    if columns:
        rec = dict(rec)
        for ours, theirs in columns.items():
            if theirs in rec and ours != theirs:
                rec[ours] = rec.pop(theirs)
    if roles and spec.turns is not None:
        field, role_key, text_key = spec.turns
        speakers = {roles[f"{r}_tag"]: r for r in ROLES if f"{r}_tag" in roles}
        turns = rec.get(field)
        if isinstance(turns, list):
            get_role, get_text = roles.get("role_tag", role_key), roles.get("content_tag", text_key)
            rec = {**rec, field: [{role_key: speakers.get(t.get(get_role), t.get(get_role)),
                                   text_key: t.get(get_text)} if isinstance(t, dict) else t for t in turns]}
    return rec


def detect_format(path: str | os.PathLike, fmt: str | None = None, *, columns: dict | None = None,
                  roles: dict | None = None, name: str | None = None) -> str:
    """The format of a source (a file, directory or glob): `fmt` when given (checked), else detected from
    the first record's keys (after the `columns` mapping). A mapping naming a column the first record
    lacks is an InputError."""
    files = source_files(path, name)
    if fmt is not None:
        _check_format(Path(path), name, fmt)
    check_mapping(path, name, columns, roles)
    first, seen = None, False
    for entry in _named(entries(files), name):
        seen = True
        if entry.error is None and isinstance(entry.record, dict):
            first = entry
            break
    if not seen:
        raise _error(path, name, "file is empty / has no records")
    if first is None:
        if fmt is not None:
            return fmt
        raise _error(path, name, "no JSON object among the records: cannot detect the format")
    _check_columns(first, name, columns)
    if fmt is not None:
        return fmt
    keys = _mapped(first.record, READERS["alpaca"], columns, None).keys()
    for found, markers in MARKERS:
        if markers <= keys:
            return found
    raise _error(first.path, name, f"cannot detect the format from the first record's keys {sorted(keys)} "
                                   f"(set `format:` to one of {', '.join(FORMATS)}, or map fields with `columns:`)")


def _check_format(path: Path, name: str | None, fmt: str) -> str:
    if fmt not in READERS:
        raise _error(path, name, f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    return fmt


# ---------------------------------------------------------------- entries to rows

def _meta(spec: _Format, rec: dict, entry: Entry) -> dict:
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


def _convert(spec: _Format, entry: Entry, columns: dict | None, roles: dict | None) -> tuple[list[dict], dict]:
    """One entry to (messages, meta); raises _Reject."""
    if entry.error is not None:
        raise _Reject("malformed_json")
    if not isinstance(entry.record, dict):
        raise _Reject("not_an_object")
    record = _mapped(entry.record, spec, columns, roles)
    messages = spec.convert(record)
    kept = _end_with_assistant(messages)
    meta = _meta(spec, record, entry)
    if len(kept) < len(messages):
        meta["trimmed_turns"] = len(messages) - len(kept)  # said, not silent
    return kept, meta


def _rejected_meta(entry: Entry) -> dict:
    raw = entry.record if entry.error is not None else json.dumps(entry.record, ensure_ascii=False, default=str)
    meta: dict[str, Any] = {"raw": raw[:RAW_CHARS]}
    if entry.line is not None:
        meta["line"] = entry.line
    if entry.error is not None:
        meta["error"] = entry.error
    if entry.group is not None:
        meta["scenario"] = entry.group
    return meta


def _json(obj: dict) -> str:
    # default=str: Parquet/Arrow fields may be dates, decimals or bytes
    return json.dumps(obj, ensure_ascii=False, default=str) if obj else "{}"


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


def read_batches(path: str | os.PathLike, name: str, fmt: str | None = None, *, columns: dict | None = None,
                 roles: dict | None = None, batch_rows: int = BATCH_ROWS, start: int = 0, stop: int | None = None,
                 counts: list[int] | None = None) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """The records [start, stop) of a source (a file, directory or glob; readers.py), converted
    `batch_rows` at a time: (rows in io.SCHEMA, rejected rows in io.REJECTED_SCHEMA) per batch.

    `fmt` (one of FORMATS) wins when given; else it is detected from the source's first record.
    `columns` maps the format's field names to the file's ({instruction: prompt}), `roles` a conversation
    format's role and text keys and speaker names (role_tag, content_tag, user_tag, assistant_tag,
    system_tag). Ids are row_id(name, original index) ("<scenario>/<i>" in a grouped object), stable
    across reruns and the same whichever range a shard reads. `counts`: records per file, if known.
    """
    files = source_files(path, name)
    spec = READERS[detect_format(path, fmt, columns=columns, roles=roles, name=name)]
    rows: list[dict] = []
    rejected: list[dict] = []
    for entry in _named(entries(files, start, stop, counts), name):
        base = {"id": row_id(name, entry.key), "source": name}
        try:
            messages, meta = _convert(spec, entry, columns, roles)
        except _Reject as reject:
            rejected.append({**base, "messages": reject.messages, "drop_reason": reject.reason,
                             "meta": _json(_rejected_meta(entry))})
        else:
            rows.append({**base, "messages": messages, "meta": _json(meta)})
        if len(rows) + len(rejected) >= batch_rows:
            yield _frame(rows, SCHEMA), _frame(rejected, REJECTED_SCHEMA)
            rows, rejected = [], []
    if rows or rejected:
        yield _frame(rows, SCHEMA), _frame(rejected, REJECTED_SCHEMA)


def read_source(path: str | os.PathLike, name: str, fmt: str | None = None, *, columns: dict | None = None,
                roles: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A whole source at once (small sources, tests): the batches of `read_batches` concatenated."""
    batches = list(read_batches(path, name, fmt, columns=columns, roles=roles))
    return (pl.concat([b[0] for b in batches]) if batches else _frame([], SCHEMA),
            pl.concat([b[1] for b in batches]) if batches else _frame([], REJECTED_SCHEMA))
