"""One training source end to end (rule clean_source): read, the reviewer's decisions, the filters,
optional refinement, and the accounting that proves no row was lost: rows_in = kept + rejected."""
from __future__ import annotations

import logging
import tempfile

import polars as pl

from culturalign.data import shards
from culturalign.data.clean import resolve
from culturalign.data.review import read_decisions
from culturalign.util import deep_merge

log = logging.getLogger(__name__)


def shard_inputs(clean_cfg: dict, rules_path: str, eval_questions: list[str], decisions_path: str | None,
                 name: str) -> dict:
    """What every shard's per-row filters need: the merged clean block, the evaluation questions (every
    question of every evaluation set: the rule's script reads them, since the data stage reads no
    evaluation set; unused when decontamination is off) and the reviewer's rejected ids."""
    cfg = deep_merge(clean_cfg, {"english_context": {"rules": rules_path}})
    human_rejected = set()
    if decisions_path:
        human_rejected = read_decisions(decisions_path)
        log.info("%s: %d ids rejected by the reviewer", name, len(human_rejected))
    questions = list(eval_questions) if resolve(cfg)["decontaminate"]["enabled"] else []
    if questions:
        log.info("%s: decontaminating against %d evaluation questions", name, len(questions))
    return {"cfg": cfg, "eval_questions": questions, "human_rejected": human_rejected}


def refine_args(refine_cfg: dict | None, refine_judge: dict | None, llm_cache: str | None, usage_path: str | None,
                benign: bool, cfg: dict) -> tuple | None:
    """merge_shards' `refine` argument, None when refinement is off."""
    if not (refine_cfg or {}).get("enabled"):
        return None
    return refine_cfg, refine_judge, llm_cache, usage_path, benign, cfg


def write_clean_source(path: str, name: str, fmt: str | None, clean_cfg: dict, out_clean: str, out_rejected: str, *,
                       rules_path: str, eval_questions: list[str], decisions_path: str | None = None,
                       refine_cfg: dict | None = None, refine_judge: dict | None = None, llm_cache: str | None = None,
                       usage_path: str | None = None, benign: bool = True, sample: dict | None = None,
                       english_judge: dict | None = None, opinion_judge: dict | None = None,
                       columns: dict | None = None, roles: dict | None = None,
                       batch_rows: int = shards.BATCH_ROWS) -> dict:
    """One source in one job, in batches (culturalign/data/shards.py): writes out_clean (kept rows) and
    out_rejected (every rejected row with its drop_reason); returns the stats.

    `clean_cfg` is the source's merged `clean` block; `rules_path` its english-context rules file (a rule
    input, so editing it reruns the job); `eval_questions` every question of every evaluation set, to
    decontaminate against; `benign` says the questions are harmless (knowledge data), for the refinement's
    refusal test; `sample` the source's {n, stratify_by, seed} (after cleaning); `english_judge` the judge
    config giving the English-context rules a second opinion (or None); `opinion_judge` the judge of
    `clean.second_opinion` (or None); `columns`/`roles` the source's field mappings.
    """
    inputs = shard_inputs(clean_cfg, rules_path, eval_questions, decisions_path, name)
    cfg = inputs.pop("cfg")
    refine = refine_args(refine_cfg, refine_judge, llm_cache, usage_path, benign, cfg)
    usage = usage_path and usage_path.removesuffix(".json")
    stats = shards.clean_in_one_job(
        path, name, fmt, cfg, out_clean, out_rejected, sample=sample, refine=refine, batch_rows=batch_rows,
        columns=columns, roles=roles, english_judge=english_judge, llm_cache=llm_cache,
        llm_usage=usage and usage + "_english_context.json", opinion_judge=opinion_judge,
        opinion_usage=usage and usage + "_second_opinion.json", refining=refine is not None, **inputs)
    log.info("%s: kept %d of %d; dropped %s; refined %d", name, stats["rows_kept"], stats["rows_in"],
             stats["dropped"], stats["refined"])
    return stats


def clean_source(path: str, name: str, fmt: str | None, clean_cfg: dict, **kwargs) -> tuple[pl.DataFrame,
                                                                                           pl.DataFrame, dict]:
    """(kept rows, every rejected row with its drop_reason, stats) of a source small enough for memory:
    write_clean_source into a scratch folder, read back."""
    with tempfile.TemporaryDirectory() as scratch:
        clean, rejected = f"{scratch}/clean.parquet", f"{scratch}/rejected.parquet"
        stats = write_clean_source(path, name, fmt, clean_cfg, clean, rejected, **kwargs)
        return pl.read_parquet(clean), pl.read_parquet(rejected), stats
