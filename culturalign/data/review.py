"""Human verification: a review sheet per source, the reviewer's decisions read back, and a summary
of the dropped rows per reason for the report.

The sheet holds n of the kept rows as CSV (UTF-8 with a byte-order mark, so spreadsheet programs show
Chinese correctly) with the columns id, source, prompt, answer, flags, decision (blank), note. Rows
the rules are unsure of come first, `flags` saying why: the rules and the LLM judge disagreed
(clean.english_context.judge; these lead), an English-context hint fired (the `hints:`
of the rules file: the prompt mentions English, letters, words, or quotes an English word, yet no rule
dropped it) or a short answer was kept as right for its task. The rest is a random sample (seeded
by id, see culturalign.data.mix.id_rank), so the order is stable and a larger n extends the sheet. The
reviewer writes `accept` or `reject` into `decision` (any case; blank = no decision) and lists the
file as the source's `decisions:` in the config; rejected ids are then dropped as `human_rejected`.
"""
from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable

import polars as pl

from culturalign.data import clean
from culturalign.io import InputError
from culturalign.data.mix import id_rank

log = logging.getLogger(__name__)

COLUMNS = ("id", "source", "prompt", "answer", "flags", "decision", "note")
DECISIONS = ("accept", "reject")
TURN_SEPARATOR = "\n---\n"  # between the turns of one role in a multi-turn dialogue


def _turns(role: str) -> pl.Expr:
    turn = pl.element().struct
    return pl.col("messages").list.eval(turn.field("content").filter(turn.field("role") == role)) \
        .list.join(TURN_SEPARATOR)


def review_flags(rows: pl.DataFrame, clean_cfg: dict | None = None) -> pl.Series:
    """Per kept row, why the rules are unsure of it ("" when they are not), see the module doc."""
    cfg = clean.resolve(clean_cfg)
    prompt, answer = _turns("user"), _turns("assistant")
    hints = clean.load_rules(cfg["english_context"]["rules"], "hints") if cfg["english_context"]["enabled"] else ()
    english = pl.lit("english_context? ") + clean.first_fired(prompt, hints)
    short_kept = (answer.str.len_chars() < cfg["length"]["min_answer"]) & clean.short_answer_fits(prompt, answer)
    short = pl.when(short_kept).then(pl.lit("too_short_answer? kept: a short answer right for its task"))
    verdict = pl.col("meta").str.json_path_match("$.english_context.english") == "true"
    rule = pl.col("meta").str.json_path_match("$.english_context.rule")
    by_llm = pl.col("meta").str.json_path_match("$.english_context.by") == "llm"
    disagree = pl.when(by_llm & (verdict != rule.is_not_null())).then(
        pl.lit("english_context? the rules and the LLM disagree (rule: ") + rule.fill_null("none")
        + pl.lit("; LLM: ") + pl.when(verdict).then(pl.lit("English")).otherwise(pl.lit("not English")) + pl.lit(")"))
    opinion = pl.col("meta").str.json_path_match("$.second_opinion")
    second = pl.when(opinion.is_not_null()).then(
        pl.lit("second opinion: ") + pl.col("meta").str.json_path_match("$.second_opinion.why").fill_null("no usable verdict"))
    return rows.select(pl.concat_str([second, disagree, english, short], separator="; ", ignore_nulls=True)
                       .fill_null("").alias("flags")).to_series()


def doubt() -> pl.Expr:
    """How doubtful the judge's second opinion left a kept row (culturalign.data.opinion): 2 when it was
    asked but gave no usable verdict, 1 - confidence when it judged the row sound, -1 when not asked."""
    verdict = pl.col("meta").str.json_path_match("$.second_opinion")
    failed = pl.col("meta").str.json_path_match("$.second_opinion.failed") == "true"
    confidence = pl.col("meta").str.json_path_match("$.second_opinion.confidence").cast(pl.Float64, strict=False)
    return (pl.when(verdict.is_null()).then(-1.0).when(failed).then(2.0).otherwise(1.0 - confidence.fill_null(0.0))
            .alias("doubt"))


def review_sheet(kept: pl.DataFrame, n: int, seed: int, clean_cfg: dict | None = None) -> pl.DataFrame:
    """n kept rows, the most doubtful first: rows the judge's second opinion could not settle, then those
    it was least sure were sound (`doubt`), then rows the rules are unsure of (rules and LLM disagreeing
    before those), then by seeded id rank (stable across reruns and row order),
    one column per COLUMNS entry. `clean_cfg`: the source's `clean` block (its rules file and
    min_answer decide the flags)."""
    return (kept.with_columns(review_flags(kept, clean_cfg), id_rank(kept["id"], seed), doubt())
            .sort(-pl.col("doubt"), pl.col("flags") == "", ~pl.col("flags").str.contains("disagree"), "rank").head(n)
            .select("id", "source", prompt=_turns("user"), answer=_turns("assistant"), flags="flags",
                    decision=pl.lit(""), note=pl.lit("")))


def drop_summary(rejected: pl.DataFrame, examples: int = 3, seed: int = 0, rules: str | None = None,
                 max_chars: int = 300) -> dict[str, dict]:
    """Per drop reason of a rejected.parquet frame, most frequent first: {"count": rows, "examples":
    [{id, prompt, answer} (+ "rule": the English-context rule that fired), ...]}, `examples` rows per
    reason picked by seeded id rank (stable), texts cut to `max_chars`. For the report."""
    picked = (rejected.with_columns(id_rank(rejected["id"], seed))
              .with_columns(count=pl.len().over("drop_reason"), pick=pl.col("rank").rank("ordinal").over("drop_reason"))
              .filter(pl.col("pick") <= examples)
              .sort(pl.col("count"), pl.col("drop_reason"), pl.col("pick"), descending=[True, False, False])
              .with_columns(prompt=_turns("user").str.slice(0, max_chars), answer=_turns("assistant").str.slice(0, max_chars),
                            rule=pl.when(pl.col("drop_reason") == "english_context")
                            .then(clean.first_fired(_turns("user").str.normalize("NFKC"), clean.load_rules(rules),
                                                   _turns("assistant").str.normalize("NFKC")))))
    summary: dict[str, dict] = {}
    for row in picked.iter_rows(named=True):
        entry = summary.setdefault(row["drop_reason"], {"count": row["count"], "examples": []})
        example = {"id": row["id"], "prompt": row["prompt"], "answer": row["answer"]}
        entry["examples"].append(example | ({"rule": row["rule"]} if row["rule"] else {}))
    return summary


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
