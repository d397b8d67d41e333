"""Rule clean_source: one training source file -> clean.parquet, rejected.parquet, stats.json.

Reads the source (culturalign.formats), drops rows the reviewer rejected and rows the filters of the
merged `clean` config catch (decontaminated against every configured evaluation set), optionally
refines weak answers (refine.enabled), and writes every dropped row with its reason.
"""
import logging

import polars as pl

from culturalign import io
from culturalign.clean import clean_frame
from culturalign.formats import read_source
from culturalign.review import read_decisions
from culturalign.workflow import deep_merge

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
log = logging.getLogger("clean_source")
name, params = snakemake.params.name, snakemake.params
# The rules file is a rule input (so editing it reruns this job): use that path.
cfg = deep_merge(params.clean, {"english_context": {"rules": str(snakemake.input.rules)}})

rows, reader_rejected = read_source(snakemake.input.source, name, params.fmt)
log.info("%s: read %d rows, %d rejected by the reader", name, rows.height, reader_rejected.height)

human_rejected = set()
if snakemake.input.get("decisions"):
    human_rejected = read_decisions(snakemake.input.decisions, known_ids=rows["id"])
    log.info("%s: %d ids rejected by the reviewer", name, len(human_rejected))

questions = []
if cfg.get("decontaminate", {}).get("enabled", True):
    from culturalign.benchmarks import load_questions
    for eval_set in params.eval_sets:
        questions += load_questions(eval_set["path"], eval_set.get("format"))
    log.info("%s: decontaminating against %d evaluation questions", name, len(questions))

kept, rejected, dropped, notes = clean_frame(
    rows, cfg, eval_questions=questions, human_rejected=human_rejected, sample=params.get("sample"),
    english_judge=params.get("english_judge"), llm_cache=params.llm_cache,
    llm_usage=params.usage and params.usage.removesuffix(".json") + "_english_context.json")

refined = 0
if params.refine.get("enabled"):
    from culturalign import refine
    kept, refine_stats = refine.refine_frame(kept, params.refine, params.refine_judge, params.llm_cache,
                                             params.usage, benign=snakemake.wildcards.stage == "knowledge")
    refined = refine_stats["refined"]

reader_counts = dict(reader_rejected["drop_reason"].value_counts(sort=True).iter_rows())
dropped = {**reader_counts, **{r: dropped[r] + reader_counts.get(r, 0) for r in dropped}}
all_rejected = pl.concat([reader_rejected.select(list(io.REJECTED_SCHEMA)).cast(io.REJECTED_SCHEMA), rejected])
stats = {"source": name, "rows_in": rows.height + reader_rejected.height, "rows_kept": kept.height,
         "rows_rejected": all_rejected.height, "dropped": dropped, "refined": refined, **notes}
assert stats["rows_in"] == stats["rows_kept"] + stats["rows_rejected"] == kept.height + sum(dropped.values()), stats

io.write_parquet(kept, snakemake.output.clean)
io.write_parquet(all_rejected, snakemake.output.rejected)
io.write_json(stats, snakemake.output.stats)
log.info("%s: kept %d of %d; dropped %s; refined %d", name, kept.height, stats["rows_in"], dropped, refined)
