"""One training source end to end (rule clean_source): read, the reviewer's decisions, the filters,
optional refinement, and the accounting that proves no row was lost: rows_in = kept + rejected."""
from __future__ import annotations

import logging

import polars as pl

from culturalign import io
from culturalign.data.clean import answer_problem, clean_frame
from culturalign.data.formats import read_source
from culturalign.data.review import read_decisions
from culturalign.util import deep_merge

log = logging.getLogger(__name__)


def merge_drops(reader_rejected: pl.DataFrame, dropped: dict[str, int]) -> dict[str, int]:
    """The reader's drop reasons (counted from its rejected rows) added to the filters' counts."""
    reader = dict(reader_rejected["drop_reason"].value_counts(sort=True).iter_rows())
    return {**reader, **{reason: n + reader.get(reason, 0) for reason, n in dropped.items()}}


def source_stats(name: str, rows_in: int, kept: pl.DataFrame, rejected: pl.DataFrame, dropped: dict[str, int],
                 refined: int, notes: dict | None = None) -> dict:
    """stats.json of a source; raises when the counts do not add up (a row lost or counted twice).
    `notes` are the filters' extra counts (normalized, sampled, ...), added as they are."""
    stats = {"source": name, "rows_in": rows_in, "rows_kept": kept.height, "rows_rejected": rejected.height,
             "dropped": dropped, "refined": refined, **(notes or {})}
    if not rows_in == kept.height + rejected.height == kept.height + sum(dropped.values()):
        raise RuntimeError(f"source '{name}': rows do not add up: {stats} (a filter lost or double-counted rows)")
    return stats


def clean_source(path: str, name: str, fmt: str | None, clean_cfg: dict, *, rules_path: str,
                 eval_questions: list[str], decisions_path: str | None = None, refine_cfg: dict | None = None,
                 refine_judge: dict | None = None, llm_cache: str | None = None, usage_path: str | None = None,
                 benign: bool = True, sample: dict | None = None,
                 english_judge: dict | None = None,
                 opinion_judge: dict | None = None) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """(kept rows, every rejected row with its drop_reason, stats) of one source file.

    `clean_cfg` is the source's merged `clean` block; `rules_path` its english-context rules file (a rule
    input, so editing it reruns the job); `eval_questions` every question of every evaluation set, to
    decontaminate against (the data stage reads no evaluation set: scripts/data/clean_source.py loads them);
    `benign` says the questions are harmless (knowledge data), for the refinement's refusal test;
    `sample` the source's {n, stratify_by, seed} (after cleaning); `english_judge` the judge config giving
    the English-context rules a second opinion (or None); `opinion_judge` the judge of
    `clean.second_opinion` (or None).
    """
    cfg = deep_merge(clean_cfg, {"english_context": {"rules": rules_path}})
    rows, reader_rejected = read_source(path, name, fmt)
    log.info("%s: read %d rows, %d rejected by the reader", name, rows.height, reader_rejected.height)

    human_rejected = set()
    if decisions_path:
        human_rejected = read_decisions(decisions_path, known_ids=rows["id"])
        log.info("%s: %d ids rejected by the reviewer", name, len(human_rejected))

    questions = eval_questions if cfg.get("decontaminate", {}).get("enabled", True) else []
    if questions:
        log.info("%s: decontaminating against %d evaluation questions", name, len(questions))

    refining = bool((refine_cfg or {}).get("enabled"))
    kept, rejected, dropped, notes = clean_frame(
        rows, cfg, eval_questions=questions, human_rejected=human_rejected, sample=sample,
        english_judge=english_judge, llm_cache=llm_cache,
        llm_usage=usage_path and usage_path.removesuffix(".json") + "_english_context.json", refining=refining,
        opinion_judge=opinion_judge,
        opinion_usage=usage_path and usage_path.removesuffix(".json") + "_second_opinion.json")

    refined = 0
    if refining:
        from culturalign.data import refine   # the LLM client stack, only when refinement is on
        kept, refine_stats = refine.refine_frame(kept, refine_cfg, refine_judge, llm_cache, usage_path, benign=benign,
                                                  clean_cfg=cfg)
        refined = refine_stats["refined"]
        # answer problems (translated code, answer checks) that refinement did not repair are dropped after all
        still = kept.select(answer_problem(pl.col("messages"), cfg).alias("drop_reason")).to_series()
        rejected = pl.concat([rejected, kept.filter(still.is_not_null()).with_columns(drop_reason=still.drop_nulls())])
        kept = kept.filter(still.is_null())
        for reason, n in still.drop_nulls().value_counts().iter_rows():
            dropped[reason] = dropped.get(reason, 0) + n

    all_rejected = pl.concat([reader_rejected.select(list(io.REJECTED_SCHEMA)).cast(io.REJECTED_SCHEMA), rejected])
    stats = source_stats(name, rows.height + reader_rejected.height, kept, all_rejected,
                         merge_drops(reader_rejected, dropped), refined, notes)
    log.info("%s: kept %d of %d; dropped %s; refined %d", name, kept.height, stats["rows_in"], stats["dropped"],
             refined)
    return kept, all_rejected, stats
