"""Human verification: a review sheet per source, and the reviewer's decisions read back.

The sheet is a random sample of the kept rows (seeded by id, see culturalign.mix.id_rank), in a
stable order, as CSV (UTF-8 with a byte-order mark, so spreadsheet programs show Chinese correctly)
with the columns id, source, prompt, answer, decision (blank), note. The reviewer writes `accept` or
`reject` into `decision` (any case; blank = no decision) and lists the file as the source's
`decisions:` in the config; rejected ids are then dropped as `human_rejected`.
"""
from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable

import polars as pl

from culturalign.io import InputError
from culturalign.mix import sample

log = logging.getLogger(__name__)

COLUMNS = ("id", "source", "prompt", "answer", "decision", "note")
DECISIONS = ("accept", "reject")
TURN_SEPARATOR = "\n---\n"  # between the turns of one role in a multi-turn dialogue


def _turns(role: str) -> pl.Expr:
    turn = pl.element().struct
    return pl.col("messages").list.eval(turn.field("content").filter(turn.field("role") == role)) \
        .list.join(TURN_SEPARATOR)


def review_sheet(kept: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """n rows sampled by seeded id rank (stable across reruns), one column per COLUMNS entry."""
    return sample(kept, n, seed).select(
        "id", "source", prompt=_turns("user"), answer=_turns("assistant"),
        decision=pl.lit(""), note=pl.lit(""))


def write_sheet(sheet: pl.DataFrame, path: str | os.PathLike) -> None:
    sheet.write_csv(path, include_bom=True)


def read_decisions(path: str | os.PathLike, known_ids: Iterable[str] | None = None) -> set[str]:
    """Ids the reviewer marked `reject`. An unknown decision value is an InputError naming the line;
    ids not in `known_ids` (when given) are only logged as a warning: the sheet may be older than
    the data."""
    rejected: set[str] = set()
    seen: list[str] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise InputError(path, "empty decisions file: expected a header line with 'id' and 'decision'")
        for column in ("id", "decision"):
            if column not in reader.fieldnames:
                raise InputError(path, f"missing column '{column}' (columns: {', '.join(reader.fieldnames)})",
                                 line=1, field=column)
        end = reader.line_num
        for record in reader:
            line, end = end + 1, reader.line_num  # a quoted prompt may span several lines: report the first
            row_id = (record["id"] or "").strip()
            decision = (record["decision"] or "").strip().lower()
            if not row_id:
                raise InputError(path, "empty id", line=line, field="id")
            if decision not in ("", *DECISIONS):
                raise InputError(path, f"unknown decision {record['decision']!r} (expected accept, reject or blank)",
                                 line=line, field="decision")
            seen.append(row_id)
            if decision == "reject":
                rejected.add(row_id)
    if known_ids is not None:
        unknown = sorted(set(seen) - set(known_ids))
        if unknown:
            log.warning("%s: %d id(s) not in the source, ignored: %s", path, len(unknown), ", ".join(unknown[:20]))
    return rejected
